// Small DOM helpers. Text from the server (comments, names, titles) only ever goes in as
// text nodes, never as HTML.

/** h('li', {class: 'x', onclick: fn, dataset: {id: 1}}, 'text', child) */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(node.dataset, value);
    } else if (name === 'class') {
      node.className = value;
    } else if (value === true) {
      node.setAttribute(name, '');
    } else {
      node.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function show(node, visible = true) {
  if (node) node.hidden = !visible;
}

/** Show a message in an element (an error line, a status line), or hide it when empty. */
export function say(node, text) {
  if (!node) return;
  node.textContent = text || '';
  node.hidden = !text;
}

export function pageConfig() {
  const script = document.getElementById('page-config');
  return script ? JSON.parse(script.textContent) : {};
}

/** A random id for nonces and Idempotency-Keys. */
export function randomId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}
