// My orders (/orders/): GET /orders/ (the signed-in buyer's, newest first, a page at a
// time), each linking to its page.

import {get} from './lib/api.js';
import {$, h, say, show} from './lib/dom.js';
import {dateTime, errorMessage, fmt, gettext, money, orderStatusLabel} from './lib/format.js';

const list = $('#orders');
const more = $('#orders-more');
let next = '/orders/';

function orderCard(order) {
  const first = order.items[0];
  const others = order.items.length - 1;
  return h('li', {class: 'order-card', dataset: {order: order.id, status: order.status}},
    h('a', {href: `/orders/${order.id}/`, class: 'order-link'},
      h('span', {class: 'order-head'},
        h('span', {class: 'order-number'}, order.number),
        h('span', {class: `badge order-${order.status}`, 'data-testid': 'order-status'}, orderStatusLabel(order.status))),
      h('span', {class: 'order-what'}, first ? `${first.title} ×${first.quantity}` : '',
        others > 0 ? fmt(gettext(' and %(n)s more'), {n: others}) : ''),
      h('span', {class: 'order-meta'}, dateTime(order.created_at), ' · ', h('strong', {}, money(order.total, order.currency))),
    ));
}

async function loadMore() {
  try {
    const page = await get(next);
    list.append(...page.results.map(orderCard));
    next = page.next ? new URL(page.next, location.href).pathname.replace(/^\/api\/v1/, '') + new URL(page.next, location.href).search : null;
    list.removeAttribute('aria-busy');
    show($('#orders-empty'), list.children.length === 0);
    show(more, Boolean(next));
  } catch (err) {
    say($('#orders-error'), errorMessage(err));
  }
}

more.querySelector('button').addEventListener('click', loadMore);
loadMore();
