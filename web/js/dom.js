// Building the page without HTML strings: every value reaches the document
// as a text node or an attribute set through the DOM, so nothing the agent
// or the user sends can become markup. The console never assigns innerHTML.

// h('tag', {attrs}, ...children): children are nodes, strings (text nodes),
// numbers, arrays of those, or null/false/undefined (skipped). Attributes:
// "class", "for", "on<event>" (a function), booleans (present when true),
// anything else set with setAttribute.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'for') el.htmlFor = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replace el's children.
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let uid = 0;
// A fresh id for label/aria wiring.
// A table's box, which scrolls sideways on a narrow screen: focusable and
// named, so that a keyboard can scroll it and a screen reader names it.
export function tableWrap(label, table) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': `Table: ${label}` }, table);
}

export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

// Announce a short message to screen readers and show it briefly.
export function toast(msg, kind = 'info') {
  const t = document.getElementById('toast');
  if (!t) return;
  fill(t, h('span', { class: `toast-${kind}` }, msg));
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => fill(t), 6000);
}

// A modal confirmation built on <dialog>: resolves true when confirmed.
// Focus moves into the dialog and back to what had it on close.
export function confirmDialog(title, body, confirmLabel, danger = false) {
  return new Promise((resolve) => {
    const before = document.activeElement;
    const titleId = nextId('dlg');
    const yes = h('button', { type: 'button', class: danger ? 'danger' : 'primary' }, confirmLabel);
    const no = h('button', { type: 'button' }, 'Cancel');
    const dlg = h('dialog', { 'aria-labelledby': titleId, class: 'confirm' },
      h('h2', { id: titleId }, title), h('div', {}, body), h('div', { class: 'actions' }, no, yes));
    const done = (v) => {
      dlg.close();
      dlg.remove();
      if (before && before.focus) before.focus();
      resolve(v);
    };
    yes.addEventListener('click', () => done(true));
    no.addEventListener('click', () => done(false));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(false); });
    document.body.append(dlg);
    dlg.showModal();
    no.focus();
  });
}
