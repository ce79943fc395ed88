// Small DOM helpers. The pages never use innerHTML: text from the server or
// the user goes in with textContent, so it can never become markup.

export const $ = (sel, root = document) => root.querySelector(sel);

// role finds the element marked data-role=name inside root (a cloned template).
export const role = (root, name) => root.querySelector(`[data-role="${name}"]`);

// el builds an element: el('p', {class: 'x', text: 'hi'}, child, ...).
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  node.append(...children.filter((c) => c !== undefined && c !== null && c !== false));
  return node;
}

// cloneTemplate returns the first element of <template id=id>.
export function cloneTemplate(id) {
  return document.getElementById(id).content.firstElementChild.cloneNode(true);
}

// announce tells screen reader users about a change that has no focus.
export function announce(text) {
  const a = document.getElementById('announcer');
  if (!a) return;
  a.textContent = '';
  // A fresh text node after a tick makes repeated messages be read again.
  setTimeout(() => { a.textContent = text; }, 50);
}

// formatCountdown renders ms as m:ss.
export function formatCountdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// uuid returns a random RFC 4122 v4 UUID. crypto.randomUUID exists only in
// secure contexts; a phone on a clinic LAN may load the page over plain
// http, where getRandomValues still works.
export function uuid() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
