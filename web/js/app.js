// The console's shell: sign-in, the hash router and the views' lifecycle.
// Routes: #/signin, #/tasks, #/tasks/NAME, #/new (?clone=NAME), #/agent.
// A view is a function (main, params) returning an object whose destroy()
// stops its timers; the shell calls it before the next view is drawn.

import { h, fill, toast } from './dom.js';
import * as api from './api.js';
import { taskListView } from './tasks.js';
import { taskDetailView } from './detail.js';
import { wizardView } from './wizard.js';
import { agentView } from './agentview.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signout = document.getElementById('signout');
let current = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/tasks';
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(query) };
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function signinView(root) {
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off',
    spellcheck: 'false', required: true, 'aria-describedby': 'token-help token-error' });
  const error = h('p', { id: 'token-error', class: 'field-error', role: 'alert' });
  const form = h('form', { class: 'card signin', novalidate: true },
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { id: 'token-help', class: 'help' },
      'The agent keeps it in STATE_DIR/agent.token (readable by its user only). ',
      'It stays in this tab and is forgotten when the tab closes.'),
    error,
    h('button', { type: 'submit', class: 'primary', id: 'signin' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    fill(error);
    input.removeAttribute('aria-invalid');
    if (!t) {
      fill(error, 'Paste the agent\'s token.');
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    try {
      await api.api('GET', '/agent', undefined, { tokenOverride: t });
    } catch (e) {
      fill(error, e.status === 401 ? 'The agent refused this token.' : e.message);
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    api.setToken(t);
    go('#/tasks');
  });
  fill(root, h('h1', { tabindex: '-1' }, 'Sign in to dth'), form);
  return {};
}

function signedIn() {
  return !!api.token();
}

async function route() {
  if (current && current.destroy) current.destroy();
  current = null;
  const { parts, query } = parseHash();
  const isSignin = parts[0] === 'signin';
  if (!signedIn() && !isSignin) {
    go('#/signin');
    return;
  }
  nav.hidden = !signedIn();
  signout.hidden = !signedIn();
  for (const a of nav.querySelectorAll('a')) {
    const here = a.getAttribute('href') === `#/${parts[0] || 'tasks'}` && (parts.length < 2 || parts[0] !== 'tasks');
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  fill(main);
  let view;
  if (isSignin) view = signinView;
  else if (parts[0] === 'tasks' && parts[1]) view = (m) => taskDetailView(m, parts[1]);
  else if (parts[0] === 'new') view = (m) => wizardView(m, { clone: query.get('clone') });
  else if (parts[0] === 'agent') view = agentView;
  else view = taskListView;
  try {
    current = await view(main);
  } catch (e) {
    fill(main, h('h1', { tabindex: '-1' }, 'Something went wrong'), h('p', { role: 'alert' }, e.message));
  }
  const h1 = main.querySelector('h1');
  if (h1 && !main.contains(document.activeElement)) h1.focus({ preventScroll: true });
  document.title = `${h1 ? h1.textContent : 'dth'} · dth`;
}

api.whenUnauthorized(() => {
  api.clearToken();
  toast('The agent no longer accepts the token: sign in again.', 'error');
  go('#/signin');
});

signout.addEventListener('click', () => {
  api.clearToken();
  go('#/signin');
});

document.querySelector('.skip').addEventListener('click', (ev) => {
  ev.preventDefault();
  main.focus();
});

window.addEventListener('hashchange', route);
route();
