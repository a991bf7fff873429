// The bell (every page, signed in): the unread count and the latest notifications.
// The user's own socket (/ws/me/) says how many are unread, then brings each new one
// (CONTRACT.md, "Notifications"); GET /notifications/ lists them, POST
// /notifications/read/ marks them read. Each new one is also announced to the page as a
// `liveshop:notification` DOM event (the order page refreshes on its order's).

import {get, post} from './lib/api.js';
import {$, h, show} from './lib/dom.js';
import {fmt, gettext, inPageLanguage, money, timeOfDay} from './lib/format.js';

const button = $('#bell');
const badge = $('#bell-count');
const panel = $('#bell-panel');
const list = $('#bell-list');
let unread = 0;
let latest = 0; // the newest id the count already includes

function setUnread(count) {
  unread = Math.max(0, count);
  badge.textContent = unread > 99 ? '99+' : String(unread);
  show(badge, unread > 0);
  button.setAttribute('aria-label', fmt(gettext('Notifications: %(n)s unread'), {n: unread}));
}

/** [text, link] for a notification. */
function describe(n) {
  const d = n.data || {};
  const order = d.order || {};
  switch (n.kind) {
    case 'host.live':
      return [fmt(gettext('%(host)s is live: %(title)s'), {host: d.host.display_name, title: inPageLanguage(d.room, 'title')}), `/rooms/${d.room.id}/`];
    case 'order.paid':
      return [fmt(gettext('Order %(number)s is paid.'), order), `/orders/${order.id}/`];
    case 'order.shipped':
      return [order.tracking
        ? fmt(gettext('Order %(number)s has shipped (tracking number %(tracking)s).'), order)
        : fmt(gettext('Order %(number)s has shipped.'), order), `/orders/${order.id}/`];
    case 'order.refunded':
      return [fmt(gettext('%(amount)s refunded on order %(number)s.'), {amount: money(order.amount), number: order.number}), `/orders/${order.id}/`];
    case 'giveaway.won':
      return [d.giveaway.prize
        ? fmt(gettext('You won “%(title)s”! Claim your prize in the show before the deadline.'), d.giveaway)
        : fmt(gettext('You won “%(title)s”!'), d.giveaway), `/rooms/${d.room.id}/`];
    default:
      return [n.kind, null];
  }
}

function item(n) {
  const [text, href] = describe(n);
  const body = [h('span', {class: 'bell-text'}, text), h('time', {datetime: n.created_at}, timeOfDay(n.created_at))];
  return h('li', {class: n.read ? 'read' : 'unread', dataset: {kind: n.kind}, 'data-testid': 'notification'},
    href ? h('a', {href}, ...body) : body);
}

async function openPanel() {
  show(panel, true);
  button.setAttribute('aria-expanded', 'true');
  const page = await get('/notifications/');
  list.replaceChildren(...page.results.map(item));
  show($('#bell-empty'), page.results.length === 0);
  if (page.results.length && unread > 0) {
    setUnread((await post('/notifications/read/', {upto: page.results[0].id})).unread);
  }
}

function closePanel() {
  show(panel, false);
  button.setAttribute('aria-expanded', 'false');
}

button.addEventListener('click', () => (panel.hidden ? openPanel().catch((err) => console.warn(err)) : closePanel()));
document.addEventListener('keydown', (key) => {
  if (key.key === 'Escape' && !panel.hidden) closePanel();
});
document.addEventListener('click', (event) => {
  if (!panel.hidden && !panel.contains(event.target) && !button.contains(event.target)) closePanel();
});

function connect(attempt = 0) {
  const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/me/`);
  socket.addEventListener('open', () => {
    attempt = 0;
  });
  socket.addEventListener('message', (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === 'notifications.unread') {
      latest = frame.data.latest;
      setUnread(frame.data.unread);
    } else if (frame.type === 'notification' && frame.data.id > latest) {
      latest = frame.data.id;
      setUnread(unread + 1);
      if (!panel.hidden) list.prepend(item(frame.data));
      document.dispatchEvent(new CustomEvent('liveshop:notification', {detail: frame.data}));
    }
  });
  socket.addEventListener('close', (event) => {
    if (event.code === 4401 || event.code === 4403) return; // signed out, or not ours: no retry
    setTimeout(() => connect(attempt + 1), Math.min(30000, 1000 * 2 ** attempt));
  });
}

// Web Push: offered in the bell's panel where the browser can and the server has a key.
async function offerPush() {
  const offer = $('#push-enable');
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !offer) return;
  const {vapid_public_key: key} = await get('/notifications/push/');
  if (!key) return;
  const registration = await navigator.serviceWorker.register('/static/liveshop/js/sw.js');
  if (await registration.pushManager.getSubscription()) return; // on already
  show(offer, true);
  offer.addEventListener('click', async () => {
    try {
      if ((await Notification.requestPermission()) !== 'granted') throw new Error('not allowed');
      const padded = key.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (key.length % 4)) % 4);
      const subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)),
      });
      await post('/notifications/push/subscriptions/', {...subscription.toJSON(), language: document.documentElement.lang});
      offer.replaceWith(h('p', {class: 'hint'}, gettext('Alerts are on for this browser.')));
    } catch (err) {
      offer.replaceWith(h('p', {class: 'hint'}, gettext('This browser did not allow alerts.')));
    }
  });
}

connect();
offerPush().catch((err) => console.warn('web push unavailable', err));
