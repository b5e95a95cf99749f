// Notifications: toasts inside the page's one polite live region (role status), so a screen
// reader announces each one without taking focus.
import { $, h } from './dom.js';

const SHOW_MS = 12000;
const MAX = 4;

export function toast(message, kind = 'info') {
  const box = $('toasts');
  const el = h('div', { class: `toast ${kind}` }, message);
  box.appendChild(el);
  while (box.children.length > MAX) box.firstElementChild.remove();
  setTimeout(() => el.remove(), SHOW_MS);
}
