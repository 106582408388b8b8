// The agent: version, uptime, where it keeps its state, tasks by state, the
// worker pool, the remotes it knows and whether each answers (checked on
// demand in the agent's background: POST .../check-remotes), and mounts.

import { h, fill, nextId, tableWrap } from './dom.js';
import * as api from './api.js';
import * as fmt from './fmt.js';

const REFRESH_MS = 2000;

function card(title, ...body) {
  const id = nextId('sec');
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...body);
}

function checkCell(c) {
  if (!c) return h('span', { class: 'badge' }, 'not checked');
  const text = c.status === 'ok' ? `answers (${c.call}, ${(c.seconds || 0).toFixed(2)} s)`
    : c.status === 'checking' ? 'checking…' : `${c.status}: ${c.message || ''}`;
  return h('span', {}, h('span', { class: `badge check-${c.status}` }, c.status), ' ',
    h('span', { class: 'muted' }, text));
}

export async function agentView(main) {
  const about = h('div'), remotes = h('div'), mounts = h('div');
  const problem = h('p', { class: 'field-error', role: 'alert' });
  const checkBtn = h('button', { type: 'button', id: 'check-remotes' }, 'Check remotes');
  const draw = (a) => {
    fill(about, h('dl', { class: 'pairs' },
      [['Version', a.version], ['Up for', fmt.duration(a.uptime_seconds)], ['Started', fmt.when(a.started)],
        ['Listening on', a.listen || '—'], ['State directory', a.state_dir || '—'],
        ['Config file', a.config || '—'], ['Drop-in directory', a.dropin_dir || '—'],
        ['Tasks', `${a.tasks} (${Object.entries(a.states || {}).filter(([, n]) => n).map(([s, n]) => `${n} ${s}`).join(', ') || 'none'})`],
        ['Workers', `${a.workers_busy} of ${a.workers} busy`],
        ['Reloads', `${a.reloads} (${a.reload_errors} failed)`]]
        .map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))])));
    fill(remotes, a.remotes.length ? tableWrap('Remotes', h('table', { class: 'data', id: 'remotes' },
      h('caption', { class: 'visually-hidden' }, 'Remotes'),
      h('thead', {}, h('tr', {}, ['Name', 'Type', 'Provider', 'Endpoint', 'Answers'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, a.remotes.map((r) => h('tr', { 'data-remote': r.name },
        h('th', { scope: 'row', 'data-label': 'Name' }, r.name), h('td', { 'data-label': 'Type' }, r.type),
        h('td', { 'data-label': 'Provider' }, [r.provider, r.region].filter(Boolean).join(' · ') || '—'),
        h('td', { 'data-label': 'Endpoint', class: 'ends' }, r.endpoint || '—'),
        h('td', { 'data-label': 'Answers' }, checkCell(r.check)))))))
      : h('p', { class: 'muted' }, 'No remotes are configured.'));
    const ms = a.mounts || [];
    fill(mounts, ms.length ? tableWrap('Mounts', h('table', { class: 'data', id: 'mounts' },
      h('caption', { class: 'visually-hidden' }, 'Mounts'),
      h('thead', {}, h('tr', {}, ['Name', 'Source', 'Mount point', 'State', 'Restarts', 'Error'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ms.map((m) => h('tr', {},
        h('th', { scope: 'row', 'data-label': 'Name' }, m.name), h('td', { 'data-label': 'Source' }, m.source || ''),
        h('td', { 'data-label': 'Mount point' }, m.mountpoint || ''),
        h('td', { 'data-label': 'State' }, h('span', { class: `badge mount-${m.state}` }, m.state)),
        h('td', { 'data-label': 'Restarts' }, String(m.restarts)), h('td', { 'data-label': 'Error' }, m.error || ''))))))
      : h('p', { class: 'muted' }, 'No [mount] sections are configured.'));
  };
  const refresh = async () => {
    try {
      draw(await api.agent.get());
      fill(problem);
    } catch (e) {
      if (e.status !== 401) fill(problem, `Could not refresh: ${e.message}`);
    }
  };
  checkBtn.addEventListener('click', async () => {
    try {
      await api.agent.checkRemotes();
    } catch (e) {
      fill(problem, `Could not check the remotes: ${e.message}`);
    }
    await refresh();
  });
  fill(main, h('h1', { tabindex: '-1' }, 'Agent'), problem, card('About', about),
    card('Remotes', h('p', { class: 'help' }, 'Credentials stay in the agent\'s config file; the console never shows them. ',
      'A check makes one cheap signed call to each remote (HeadBucket, GET /v2/, GetAuthorizationToken).'), checkBtn, remotes),
    card('Mounts', mounts));
  await refresh();
  const timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  return { destroy: () => clearInterval(timer) };
}
