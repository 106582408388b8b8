// The task list: every task with its state, progress, rate and last run,
// filtered by state and type and searched by name; refreshed every 2 s
// without redrawing the filters (focus and typing are kept).

import { h, fill, tableWrap } from './dom.js';
import * as api from './api.js';
import * as fmt from './fmt.js';

const STATES = ['idle', 'running', 'stopping', 'stopped', 'error'];
const REFRESH_MS = 2000;

export function stateBadge(state) {
  return h('span', { class: `badge state-${state}` }, state);
}

export function endpoints(t) {
  const d = t.definition || {};
  return `${d.source ?? '?'} → ${d.destination ?? '?'}`;
}

// Objects (images, for an image task) and bytes of the run in progress; when
// idle, the manifest's counts for an S3 task and the last run's for an image
// task (its records are images, not manifest objects). Nothing to count
// draws an empty bar, not a busy one.
export function progressOf(t) {
  const unit = t.type === 'image' ? 'images' : 'objects';
  const p = t.progress;
  if (p) {
    const doneN = p.transferred + p.skipped + p.failed;
    return { label: `${fmt.count(doneN)} of ${fmt.count(p.planned)} ${unit} · ${fmt.bytes(p.bytes)}`,
      pct: fmt.percent(doneN, p.planned) ?? 0, rate: p.rate_bytes_per_second, eta: p.eta_seconds };
  }
  let done = 0, total = 0, bytes = 0;
  if (t.type === 'image') {
    const r = t.last_run;
    if (r) { done = r.transferred + r.skipped; total = r.planned; bytes = r.bytes; }
  } else {
    const o = (t.stats && t.stats.objects) || {};
    total = Object.values(o).reduce((x, y) => x + y, 0) - (o.deleted || 0);
    done = (o.done || 0) + (o.skipped || 0);
    bytes = ((t.stats && t.stats.bytes) || {}).done || 0;
  }
  return { label: `${fmt.count(done)} of ${fmt.count(total)} ${unit} · ${fmt.bytes(bytes)}`,
    pct: fmt.percent(done, total) ?? 0, rate: null, eta: null };
}

export function progressBar(pct, label) {
  return h('div', { class: 'progress' },
    h('progress', { max: '100', value: pct === null ? undefined : pct.toFixed(1), 'aria-label': label }),
    h('span', { class: 'progress-label' }, label));
}

function lastRunCell(t) {
  const r = t.last_run;
  if (!r) return 'never';
  return h('span', {}, h('span', { class: `result result-${r.result}` }, r.result || 'running'),
    ' ', h('span', { class: 'muted' }, fmt.ago(r.ended || r.started)));
}

function lastError(t) {
  if (t.error) return t.error.message;
  const r = t.last_run;
  return r && r.errors && r.errors.length ? r.errors[0] : '';
}

function row(t) {
  const pr = progressOf(t);
  const link = h('a', { href: `#/tasks/${api.enc(t.name)}` }, t.name);
  return h('tr', { 'data-task': t.name },
    h('th', { scope: 'row', 'data-label': 'Name' }, link),
    h('td', { 'data-label': 'Type' }, t.type === 'image' ? 'Image' : 'S3'),
    h('td', { 'data-label': 'Source → destination', class: 'ends' }, endpoints(t)),
    h('td', { 'data-label': 'Status' }, stateBadge(t.state)),
    h('td', { 'data-label': 'Progress' }, progressBar(pr.pct, pr.label)),
    h('td', { 'data-label': 'Rate' }, fmt.rate(pr.rate)),
    h('td', { 'data-label': 'Last run' }, lastRunCell(t)),
    h('td', { 'data-label': 'Last error', class: 'error-text' }, lastError(t)));
}

export async function taskListView(main) {
  const search = h('input', { id: 'task-search', type: 'search', autocomplete: 'off' });
  const state = h('select', { id: 'task-state' }, h('option', { value: '' }, 'Any'),
    STATES.map((s) => h('option', { value: s }, s)));
  const type = h('select', { id: 'task-type' }, h('option', { value: '' }, 'Any'),
    h('option', { value: 's3' }, 'S3'), h('option', { value: 'image' }, 'Image'));
  const tbody = h('tbody');
  const summary = h('p', { id: 'task-summary', class: 'muted', 'aria-live': 'polite' });
  const problem = h('p', { class: 'field-error', role: 'alert' });
  let tasks = [];

  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const shown = tasks.filter((t) => (!q || t.name.toLowerCase().includes(q))
      && (!state.value || t.state === state.value) && (!type.value || t.type === type.value));
    fill(tbody, shown.length ? shown.map(row)
      : h('tr', {}, h('td', { colspan: '8', class: 'empty' },
        tasks.length ? 'No task matches.' : 'No tasks yet. ', tasks.length ? null : h('a', { href: '#/new' }, 'Create one'))));
    const running = tasks.filter((t) => t.state === 'running').length;
    fill(summary, `${shown.length} of ${tasks.length} tasks shown · ${running} running`);
  };
  const refresh = async () => {
    try {
      tasks = (await api.tasks.list()).tasks;
      fill(problem);
      draw();
    } catch (e) {
      if (e.status !== 401) fill(problem, `Could not refresh: ${e.message}`);
    }
  };
  for (const el of [search, state, type]) el.addEventListener('input', draw);

  fill(main,
    h('div', { class: 'title-row' }, h('h1', { tabindex: '-1' }, 'Tasks'),
      h('a', { class: 'button primary', href: '#/new', id: 'new-task' }, 'New task')),
    h('form', { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'field' }, h('label', { for: 'task-search' }, 'Search by name'), search),
      h('div', { class: 'field' }, h('label', { for: 'task-state' }, 'Status'), state),
      h('div', { class: 'field' }, h('label', { for: 'task-type' }, 'Type'), type)),
    summary, problem,
    tableWrap('Tasks',
      h('table', { class: 'tasks', id: 'tasks' },
        h('caption', { class: 'visually-hidden' }, 'Tasks, refreshed every 2 seconds'),
        h('thead', {}, h('tr', {}, ['Name', 'Type', 'Source → destination', 'Status', 'Progress',
          'Rate', 'Last run', 'Last error'].map((c) => h('th', { scope: 'col' }, c)))),
        tbody)));
  await refresh();
  const timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  return { destroy: () => clearInterval(timer) };
}
