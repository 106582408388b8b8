// Numbers and times for people.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  let v = Number(n), i = 0;
  while (Math.abs(v) >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${UNITS[i]}`;
}

export function rate(n) {
  return n ? `${bytes(n)}/s` : '—';
}

export function count(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US');
}

export function duration(s) {
  if (s === null || s === undefined) return '—';
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

// Unix seconds: "2026-12-05 18:22:04" in the browser's zone.
export function when(t) {
  if (!t) return '—';
  const d = new Date(t * 1000);
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// "3m ago", "in 5s".
export function ago(t) {
  if (!t) return '—';
  const d = Math.round(Date.now() / 1000 - t);
  return d >= 0 ? `${duration(d)} ago` : `in ${duration(-d)}`;
}

export function percent(part, whole) {
  if (!whole) return null;
  return Math.max(0, Math.min(100, (100 * part) / whole));
}
