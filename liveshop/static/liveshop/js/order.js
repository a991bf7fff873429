// One of my orders (/orders/{id}/): GET /orders/{id}/, fetched again when the user's own
// socket says the order was paid, shipped or refunded (the bell's `liveshop:notification`),
// and every few seconds while it can still change, for the rest (an expiry); pay or cancel it while
// it waits for payment (Stripe.js, POST /orders/{id}/cancel/); ask the seller for a
// refund once paid (POST /orders/{id}/refund-claim/ {reason}).

import {ApiError, get, post} from './lib/api.js';
import {$, h, pageConfig, say, show} from './lib/dom.js';
import {clock, dateTime, districtName, errorMessage, fmt, gettext, money, orderStatusLabel} from './lib/format.js';
import {mountCard, paymentReady, paymentsConfigured} from './lib/payments.js';

const config = pageConfig();
const orderId = config.order;
const errorLine = $('#order-error');
const note = $('#order-note');
const REFRESH_MS = 10000;
// Statuses that can still change without the buyer doing anything.
const MOVING = new Set(['pending_payment', 'paid', 'shipped']);
let order = null;
let card = null;
let paying = false;

function timeline(o) {
  const steps = [
    [gettext('Ordered'), o.created_at],
    [gettext('Paid'), o.paid_at],
    [gettext('Shipped'), o.shipped_at],
  ];
  if (o.status === 'delivered') steps.push([gettext('Delivered'), null]);
  if (o.status === 'cancelled' || o.status === 'expired' || o.status === 'refunded') steps.push([orderStatusLabel(o.status), null]);
  return steps.filter(([, at], index) => index === 0 || at || index >= 3)
    .map(([label, at]) => h('li', {}, h('strong', {}, label), at ? ` · ${dateTime(at)}` : ''));
}

function render(o) {
  $('#order-number').textContent = o.number;
  const badge = $('#order-status');
  badge.textContent = orderStatusLabel(o.status);
  badge.className = `badge order-${o.status}`;
  badge.dataset.status = o.status;
  $('#order-timeline').replaceChildren(...timeline(o));
  $('#order-items').replaceChildren(...o.items.map((item) =>
    h('li', {class: 'order-item'}, h('span', {}, item.title), h('span', {}, `×${item.quantity}`),
      h('span', {}, money(item.unit_price * item.quantity, o.currency)))));
  $('#order-total').textContent = money(o.total, o.currency);
  show($('#order-refunded-label'), o.refunded_amount > 0);
  show($('#order-refunded'), o.refunded_amount > 0);
  $('#order-refunded').textContent = money(o.refunded_amount, o.currency);
  const ship = o.shipping || {};
  $('#order-shipping').textContent = [ship.name, ship.phone, ship.address, ship.district && districtName(ship.district)]
    .filter(Boolean).join(' · ');
  const tracking = $('#order-tracking');
  tracking.textContent = o.tracking ? fmt(gettext('Tracking number: %(tracking)s'), {tracking: o.tracking}) : '';
  show(tracking, Boolean(o.tracking));

  const unpaid = o.status === 'pending_payment';
  show($('#order-pay'), unpaid);
  if (!unpaid) say(note, ''); // "Waiting for the confirmation…" is over once it came
  if (unpaid) mountPayment(o);
  else if (card) {
    card.destroy();
    card = null;
  }

  const refundable = ['paid', 'shipped', 'delivered'].includes(o.status) && o.refunded_amount < o.total;
  const claim = o.refund_claim;
  show($('#order-refund'), refundable || Boolean(claim));
  show($('#refund-form'), refundable && !claim);
  const claimLine = $('#refund-claim');
  show(claimLine, Boolean(claim));
  if (claim) {
    claimLine.textContent = claim.status === 'refunded'
      ? gettext('You asked for a refund, and the seller refunded you.')
      : fmt(gettext('You asked for a refund on %(date)s: “%(reason)s”. The seller has been told.'), {date: dateTime(claim.created_at), reason: claim.reason});
  }
}

let preparing = false;

async function mountPayment(o) {
  if (!paymentsConfigured()) {
    say(errorLine, gettext('Payments are not set up on this server.'));
    return;
  }
  if (o.payment && o.payment.status === 'preparing' && !preparing) {
    // Its PaymentIntent waits for Stripe's rate limit: ready in a few seconds.
    preparing = true;
    say(note, gettext('Preparing the payment…'));
    const payment = await paymentReady(o).finally(() => { preparing = false; });
    if (payment) {
      say(note, '');
      await refresh();
    } else {
      say(note, gettext('The payment is taking longer than usual. Reload the page in a moment.'));
    }
    return;
  }
  if (card || !(o.payment && o.payment.client_secret)) return;
  try {
    card = await mountCard($('#card-element'));
  } catch (err) {
    say(errorLine, gettext('The payment form could not be loaded. Check your connection and try again.'));
  }
}

async function refresh() {
  try {
    order = await get(`/orders/${orderId}/`);
    render(order);
  } catch (err) {
    say(errorLine, errorMessage(err));
  }
}

$('#order-pay-button').addEventListener('click', async () => {
  if (paying || !card || !order) return;
  if (!card.complete) {
    say(errorLine, gettext('Enter the whole card: number, expiry date and security code.'));
    return;
  }
  paying = true;
  say(errorLine, '');
  say(note, gettext('Paying…'));
  try {
    const result = await card.confirm(order.payment.client_secret, (order.shipping || {}).name);
    if (result.error) {
      say(note, '');
      say(errorLine, result.error.message);
      return;
    }
    say(note, gettext('Payment sent. Waiting for the confirmation…'));
    await refresh();
  } finally {
    paying = false;
  }
});

$('#order-cancel').addEventListener('click', async () => {
  if (!confirm(gettext('Cancel this order?'))) return;
  try {
    order = await post(`/orders/${orderId}/cancel/`);
    render(order);
  } catch (err) {
    say(errorLine, err instanceof ApiError && err.code === 'conflict' ? gettext('This order can no longer be cancelled.') : errorMessage(err));
    refresh();
  }
});

$('#refund-form').addEventListener('submit', async (submit) => {
  submit.preventDefault();
  try {
    order = await post(`/orders/${orderId}/refund-claim/`, {reason: submit.target.elements.reason.value.trim()});
    render(order);
    say(errorLine, '');
  } catch (err) {
    say(errorLine, errorMessage(err));
  }
});

// The unpaid order's deadline, counted down.
setInterval(() => {
  if (!order || order.status !== 'pending_payment') return;
  const left = new Date(order.expires_at) - Date.now();
  $('#order-expires').textContent = left > 0
    ? fmt(gettext('Pay within %(time)s, or the order is cancelled and its items go back on sale.'), {time: clock(left)})
    : gettext('The time to pay is up.');
}, 500);

document.addEventListener('liveshop:notification', (event) => {
  const about = (event.detail.data || {}).order;
  if (about && about.id === orderId) refresh();
});

refresh();
setInterval(() => {
  if (document.visibilityState === 'visible' && order && MOVING.has(order.status) && !paying) refresh();
}, REFRESH_MS);
