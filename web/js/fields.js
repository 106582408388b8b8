// Form fields of the task wizard and their checks. The checks follow the
// settings table the agent publishes (/api/v1/settings: type, bounds, words),
// so the page refuses what the API would refuse; the wizard also asks the
// agent itself (a dry run) as the user types, and shows its answer next to
// the field it names.

import { h, fill, nextId } from './dom.js';

const enc = new TextEncoder();
const CONTROL = /[\u0000-\u001f\u007f]/;
const UNIT = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

// A size as dth reads it: digits, then an optional K/M/G/T (with an
// optional "B" or "iB") or B. The value in bytes, or null.
export function parseSize(text) {
  const m = /^(\d+)(?:([kmgt])(?:i?b)?|(b))?$/i.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * UNIT[(m[2] || m[3] || '').toLowerCase()];
}

// "8388608" -> "8M" when it divides evenly.
export function sizeText(n) {
  for (const [u, m] of [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]]) {
    if (n >= m && n % m === 0) return `${n / m}${u}`;
  }
  return String(n);
}

function textProblem(text, max) {
  if (CONTROL.test(text)) return 'control characters are not allowed';
  if (max && enc.encode(text).length > max) return `at most ${max} bytes`;
  return null;
}

// The problem with text as a value of setting s (from /settings), or null.
export function settingProblem(s, text) {
  if (text === '') return s.required ? 'required' : null;
  switch (s.type) {
    case 'count': {
      if (!/^\d+$/.test(text)) return 'a whole number';
      const v = Number(text);
      if ((s.min !== undefined && v < s.min) || (s.max !== undefined && v > s.max)) return `from ${s.min} to ${s.max}`;
      return null;
    }
    case 'size': {
      const v = parseSize(text);
      if (v === null) return 'a size such as 8M, 512K or 1G';
      if ((s.min !== undefined && v < s.min) || (s.max !== undefined && v > s.max)) {
        return `from ${sizeText(s.min)} to ${sizeText(s.max)}`;
      }
      return null;
    }
    case 'word':
      return (s.words || []).includes(text) ? null : `one of ${(s.words || []).join(', ')}`;
    default:
      return textProblem(text, s.max);
  }
}

export function nameProblem(text) {
  if (!text) return 'required';
  if (enc.encode(text).length > 255) return 'at most 255 bytes';
  if (CONTROL.test(text)) return 'control characters are not allowed';
  return null;
}

export function bucketProblem(text) {
  if (!text) return 'required';
  if (/[\s/]/.test(text)) return 'a bucket name has no spaces or slashes';
  if (text.length > 255) return 'too long for a bucket name';
  return null;
}

// A 5-field cron expression or an @shorthand; the agent checks the rest.
export function scheduleProblem(text) {
  const t = text.trim();
  if (/^once$/i.test(t)) return null;
  const every = /^every\s+(.*)$/i.exec(t);
  if (every) {
    return /^(\d+|(\d+d)?(\d+h)?(\d+m)?(\d+s)?)$/i.test(every[1]) && every[1] ? null
      : 'a duration such as 90, 30s, 5m, 2h, 1d or 1h30m';
  }
  const cron = /^(?:cron\s+)?["']?(.*?)["']?$/i.exec(t)[1];
  if (/^@(hourly|daily|midnight|weekly|monthly|yearly|annually)$/i.test(cron)) return null;
  if (cron.split(/\s+/).length === 5) return null;
  return 'once, every DURATION, or a cron expression of 5 fields';
}

// One labelled field: control, help line and error line, wired for screen
// readers (aria-describedby, aria-invalid). check(text) returns a problem or
// null; it runs as the user types.
export function field({ key, label, control, help, check, wide }) {
  const id = control.id || nextId(`f-${key}`);
  control.id = id;
  if (!control.name) control.name = key;
  const helpEl = help ? h('p', { class: 'help', id: `${id}-help` }, help) : null;
  const errEl = h('p', { class: 'field-error', id: `${id}-error` });
  control.setAttribute('aria-describedby', [helpEl ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(' '));
  const isCheck = control.type === 'checkbox';
  const el = h('div', { class: `field${isCheck ? ' check' : ''}${wide ? ' wide' : ''}`, 'data-field': key },
    isCheck ? [control, h('label', { for: id }, label)] : [h('label', { for: id }, label), control], helpEl, errEl);
  const f = {
    key, el, control,
    text: () => (isCheck ? String(control.checked) : control.value.trim()),
    setError(msg) {
      fill(errEl, msg || '');
      if (msg) control.setAttribute('aria-invalid', 'true');
      else control.removeAttribute('aria-invalid');
    },
    problem: () => (check ? check(f.text()) : null),
    validate() {
      const p = f.problem();
      f.setError(p ? `${label}: ${p}` : null);
      return !p;
    },
  };
  control.addEventListener('input', () => f.validate());
  control.addEventListener('change', () => f.validate());
  return f;
}

export function textInput(attrs = {}) {
  return h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', ...attrs });
}

export function select(options, attrs = {}) {
  return h('select', attrs, options.map(([v, text, extra]) => h('option', { value: v, ...(extra || {}) }, text)));
}

export function checkbox(attrs = {}) {
  return h('input', { type: 'checkbox', ...attrs });
}

export function textarea(attrs = {}) {
  return h('textarea', { rows: '3', spellcheck: 'false', autocomplete: 'off', ...attrs });
}

// Lines of a textarea, blanks dropped.
export function lines(text) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean);
}

// A field for a setting of the table, drawn by its type.
export function settingField(s, kind) {
  const dflt = s.default && typeof s.default === 'object' ? s.default[kind] : s.default;
  let control;
  if (s.type === 'bool') {
    control = checkbox({ checked: dflt === 'true' });
  } else if (s.type === 'word') {
    control = select([['', dflt ? `default (${dflt})` : 'none'], ...(s.words || []).map((w) => [w, w])]);
  } else if (s.type === 'list') {
    control = textarea({ placeholder: s.arg || '' });
  } else {
    control = textInput({ placeholder: dflt ? `default ${dflt}` : '', inputmode: s.type === 'count' ? 'numeric' : undefined });
  }
  const label = s.name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
  const help = [s.help, s.type === 'size' ? 'a size: 8M, 1G' : null].filter(Boolean).join('; ');
  const f = field({ key: s.name, label, control, help,
    check: s.type === 'list' ? (t) => lines(t).map((l) => settingProblem({ ...s, type: 'text' }, l)).find(Boolean) || null
      : s.type === 'bool' ? null : (t) => settingProblem({ ...s, required: false }, t) });
  // The value for the API, or undefined to leave the agent's default.
  f.value = () => {
    if (s.type === 'bool') return control.checked === (dflt === 'true') && !f.touched ? undefined : control.checked;
    if (s.type === 'list') return lines(control.value);
    return control.value.trim() === '' ? undefined : control.value.trim();
  };
  f.set = (v) => {
    if (v === null || v === undefined) return;
    if (s.type === 'bool') { control.checked = !!v; f.touched = true; }
    else if (s.type === 'list') control.value = (v || []).join('\n');
    else if (s.type === 'size' && typeof v === 'number') control.value = sizeText(v);
    else control.value = String(v);
  };
  if (s.type === 'bool') control.addEventListener('change', () => { f.touched = true; });
  return f;
}
