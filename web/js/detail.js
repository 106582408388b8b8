// One task: its counters and live progress, a throughput chart and an
// objects chart (from /series), the run history, failed objects with a
// retry button, recent events, image records, the definition; and the
// actions start, stop, run now, retry failed, clone and delete.

import { h, fill, toast, confirmDialog, nextId, tableWrap } from './dom.js';
import * as api from './api.js';
import * as fmt from './fmt.js';
import { stateBadge, endpoints, progressOf, progressBar } from './tasks.js';

const REFRESH_MS = 2500;
const COLORS = { bytes: '#1f5fa8', copied: '#1b7f3b', failed: '#b3261e', skipped: '#7a6a00' };

function section(title, ...body) {
  const id = nextId('sec');
  return h('section', { 'aria-labelledby': id, class: 'card' }, h('h2', { id }, title), ...body);
}

function table(caption, cols, rows, empty) {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return tableWrap(caption, h('table', { class: 'data' },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => (i === 0
      ? h('th', { scope: 'row', 'data-label': cols[i] }, c) : h('td', { 'data-label': cols[i] }, c))))))));
}

function dl(pairs) {
  return h('dl', { class: 'pairs' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

// A Chart.js chart on a canvas with a text summary for those who cannot see it.
function makeChart(kind, label) {
  const canvas = h('canvas', { role: 'img', 'aria-label': label });
  const box = h('div', { class: 'chart' }, canvas);
  const summary = h('p', { class: 'muted chart-summary' });
  let chart = null;
  const update = (labels, datasets, text) => {
    fill(summary, text);
    canvas.setAttribute('aria-label', `${label}: ${text}`);
    if (!window.Chart) return;
    if (!chart) {
      chart = new window.Chart(canvas, {
        type: kind,
        data: { labels, datasets },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false,
          interaction: { mode: 'index', intersect: false },
          scales: { x: { stacked: kind === 'bar', ticks: { maxTicksLimit: 6 } },
            y: { stacked: kind === 'bar', beginAtZero: true,
              ticks: kind === 'line' ? { callback: (v) => fmt.rate(v) } : { precision: 0 } } },
          plugins: { legend: { display: datasets.length > 1 } },
        },
      });
    } else {
      chart.data.labels = labels;
      chart.data.datasets.forEach((d, i) => { d.data = datasets[i].data; });
      chart.update('none');
    }
  };
  return { el: h('div', {}, box, summary), update, destroy: () => chart && chart.destroy() };
}

function clock(t) {
  return fmt.when(t).slice(11);
}

function drawCharts(series, tput, objs) {
  const s = series.samples || [];
  const iv = series.interval_seconds || 5;
  const labels = s.map((x) => clock(x.t));
  const rates = s.map((x) => x.bytes / iv);
  const peak = rates.reduce((a, b) => Math.max(a, b), 0);
  const sum = (k) => s.reduce((a, x) => a + x[k], 0);
  const span = s.length ? fmt.duration(s.length * iv) : 'no samples yet';
  tput.update(labels, [{ label: 'Throughput', data: rates, borderColor: COLORS.bytes,
    backgroundColor: COLORS.bytes, borderWidth: 2,
    // points only while there are too few for a line
    pointRadius: (c) => (c.chart.data.labels.length < 3 ? 3 : 0) }],
  `last ${span}: ${fmt.bytes(sum('bytes'))} moved, peak ${fmt.rate(peak)}, now ${fmt.rate(rates[rates.length - 1] || 0)}`);
  objs.update(labels, ['copied', 'failed', 'skipped'].map((k) => ({ label: k, data: s.map((x) => x[k]),
    backgroundColor: COLORS[k], borderColor: COLORS[k] })),
  `last ${span}: ${fmt.count(sum('copied'))} copied, ${fmt.count(sum('failed'))} failed, ${fmt.count(sum('skipped'))} skipped`);
}

function runRows(runs) {
  return runs.map((r) => [String(r.seq), r.trigger, fmt.when(r.started),
    r.ended ? fmt.duration(r.ended - r.started) : 'running',
    h('span', { class: `result result-${r.result}` }, r.result || 'running'),
    fmt.count(r.transferred), fmt.count(r.skipped), fmt.count(r.failed), fmt.bytes(r.bytes),
    (r.errors || []).slice(0, 3).join('; ')]);
}

function definitionRows(def) {
  return Object.entries(def).filter(([, v]) => v !== null && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]);
}

export async function taskDetailView(main, name) {
  const head = h('div');
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Task actions' });
  const counters = h('div');
  const tput = makeChart('line', 'Throughput chart');
  const objs = makeChart('bar', 'Objects chart');
  const runsBox = h('div'), failBox = h('div'), evBox = h('div'), imgBox = h('div'), defBox = h('div');
  const status = h('p', { class: 'field-error', role: 'alert' });
  let task = null, failures = [];

  const act = async (what, label) => {
    try {
      await api.tasks.action(name, what);
      toast(`${label}: asked of ${name}.`);
      await refresh();
    } catch (e) {
      toast(`${label} refused: ${e.message}`, 'error');
    }
  };
  const remove = async () => {
    const purgeId = nextId('purge');
    const purge = h('input', { type: 'checkbox', id: purgeId });
    const ok = await confirmDialog(`Delete task ${name}?`, [
      h('p', {}, 'The task stops and is removed. Objects already copied stay at the destination.'),
      h('div', { class: 'check' }, purge, h('label', { for: purgeId }, 'Also delete its records from the manifest'))],
    'Delete task', true);
    if (!ok) return;
    try {
      await api.tasks.remove(name, purge.checked);
      toast(`Task ${name} deleted.`);
      location.hash = '#/tasks';
    } catch (e) {
      toast(`Delete refused: ${e.message}`, 'error');
    }
  };

  const button = (label, fn, opts = {}) => h('button', { type: 'button', id: opts.id, class: opts.cls,
    disabled: opts.disabled, onclick: fn, title: opts.title }, label);
  // Built once and updated in place, so focus stays on a button across refreshes.
  const title = h('h1', { tabindex: '-1', id: 'task-title' }, name);
  const badge = h('span');
  const ends = h('p', { class: 'ends' });
  const origin = h('p', { class: 'muted' });
  const errLine = h('p', { class: 'error-text', id: 'task-error' });
  const btn = {
    start: button('Start', () => act('start', 'Start'), { id: 'act-start' }),
    stop: button('Stop', () => act('stop', 'Stop'), { id: 'act-stop' }),
    run: button('Run now', () => act('run', 'Run'), { id: 'act-run' }),
    retry: button('Retry failed', () => act('retry', 'Retry'), { id: 'act-retry' }),
    clone: h('a', { class: 'button', id: 'act-clone', href: `#/new?clone=${api.enc(name)}` }, 'Clone'),
    del: button('Delete', remove, { id: 'act-delete', cls: 'danger' }),
  };
  fill(head, h('p', { class: 'crumbs' }, h('a', { href: '#/tasks' }, 'Tasks'), ' / ', name),
    h('div', { class: 'title-row' }, title, badge), ends, origin, errLine);
  fill(actions, Object.values(btn));
  const drawHead = (t) => {
    fill(badge, stateBadge(t.state));
    fill(ends, `${t.type === 'image' ? 'Image' : 'S3'} task · ${endpoints(t)}`);
    fill(origin, t.read_only ? `Defined in ${t.origin_where || t.origin}: change it there.` : '');
    fill(errLine, t.error ? `${t.error.code}: ${t.error.message}` : '');
    const busy = t.state === 'running' || t.state === 'stopping';
    btn.start.disabled = !(t.state === 'stopped' || t.user_stopped);
    btn.stop.disabled = t.state === 'stopped' || t.state === 'stopping';
    btn.run.disabled = busy;
    btn.retry.disabled = busy || !failures.length;
    btn.del.disabled = t.read_only;
    btn.del.title = t.read_only ? 'Defined in a file: delete it there' : '';
  };
  const drawCounters = (t) => {
    const pr = progressOf(t);
    const o = (t.stats && t.stats.objects) || {};
    const b = (t.stats && t.stats.bytes) || {};
    const r = t.last_run || {};
    // An image task's records are images (see the Images table), not
    // manifest objects: its counters are the last run's.
    const counts = t.type === 'image'
      ? [['Copied (last run)', `${fmt.count(r.transferred)} (${fmt.bytes(r.bytes)})`],
        ['Unchanged (last run)', fmt.count(r.skipped)], ['Failed (last run)', fmt.count(r.failed)]]
      : [['Done', `${fmt.count(o.done)} (${fmt.bytes(b.done)})`], ['Failed', fmt.count(o.failed)],
        ['Skipped', fmt.count(o.skipped)], ['Pending', fmt.count((o.pending || 0) + (o.copying || 0))],
        ['Deleted', fmt.count(o.deleted)]];
    fill(counters, progressBar(pr.pct, pr.label), dl([
      ['Rate', fmt.rate(pr.rate)], ['Time left', pr.eta === null ? '—' : fmt.duration(pr.eta)],
      ...counts, ['Next run', t.next_run ? fmt.when(t.next_run) : '—'],
      ['Last success', fmt.when(t.last_success)], ['Schedule', t.definition.schedule || 'once'],
      ['Events', t.events ? `${t.definition.events || 'none'} · ${fmt.count(t.events.received)} received, ${fmt.count(t.events.ignored)} ignored, ${fmt.count(t.events.refused)} refused` : '—']]));
  };
  const slow = async () => {
    const [runs, fail, series, events, images] = await Promise.all([
      api.tasks.runs(name).catch(() => null), api.tasks.failures(name).catch(() => null),
      api.tasks.series(name).catch(() => null), api.tasks.events(name).catch(() => null),
      task && task.type === 'image' ? api.tasks.images(name).catch(() => null) : null]);
    if (runs) fill(runsBox, table('Run history', ['Run', 'Trigger', 'Started', 'Took', 'Result', 'Copied', 'Skipped', 'Failed', 'Bytes', 'Errors'], runRows(runs.runs), 'No runs yet.'));
    if (fail) {
      failures = fail.objects;
      fill(failBox, table('Failed objects', ['Key', 'Reason', 'Attempts', 'Size'],
        failures.map((f) => [f.key, f.error || '', String(f.attempts), fmt.bytes(f.size)]), 'No failed objects.'),
      fail.next ? h('p', { class: 'muted' }, 'More failed objects: dth task failures lists them all.') : null);
    }
    if (series) drawCharts(series, tput, objs);
    if (events) fill(evBox, table('Recent events', ['When', 'Source', 'Kind', 'Key', 'Outcome'],
      events.events.map((e) => [fmt.when(e.t), e.source, e.kind, e.key || '', e.reason ? `${e.outcome}: ${e.reason}` : e.outcome]), 'No events received.'));
    if (images) fill(imgBox, table('Images', ['Image', 'Status', 'Source digest', 'Destination digest', 'Error'],
      images.images.map((i) => [i.ref, i.status, i.src_digest, i.dst_digest || '', i.error || '']), 'No image records yet.'));
  };
  const refresh = async () => {
    try {
      task = await api.tasks.get(name);
    } catch (e) {
      if (e.status === 404) {
        fill(main, h('h1', { tabindex: '-1' }, 'No such task'), h('p', {}, `There is no task called ${name}. `, h('a', { href: '#/tasks' }, 'Back to the tasks')));
        return false;
      }
      fill(status, `Could not refresh: ${e.message}`);
      return true;
    }
    fill(status);
    drawHead(task);
    drawCounters(task);
    if (!defBox.childNodes.length) fill(defBox, table('Definition', ['Setting', 'Value'], definitionRows(task.definition), ''));
    return true;
  };

  if (!(await refresh())) return {};
  fill(main, head, actions, status,
    section('Progress', counters),
    h('div', { class: 'grid2' }, section('Throughput', tput.el), section('Objects', objs.el)),
    section('Failed objects', failBox),
    section('Run history', runsBox),
    section('Recent events', evBox),
    task.type === 'image' ? section('Images', imgBox) : null,
    section('Definition', defBox));
  await slow();
  drawHead(task);
  let n = 0;
  const timer = setInterval(async () => {
    if (document.hidden) return;
    if ((await refresh()) && ++n % 2 === 0) await slow();
  }, REFRESH_MS);
  return { destroy: () => { clearInterval(timer); tput.destroy(); objs.destroy(); } };
}
