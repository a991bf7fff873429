// Buying: quantity and shipping, then the card in Stripe.js. POST /orders/ (with an
// Idempotency-Key, so a retried click never orders twice) holds the units and answers
// with the PaymentIntent's client secret; Stripe.js confirms it with the card; the
// order turns paid when Stripe's webhook reaches the server, which the page learns
// from GET /orders/{id}/. Closing the sheet before paying cancels the order, giving
// its units back at once.

import {ApiError, get, post} from '../lib/api.js';
import {$, h, pageConfig, randomId, say, show} from '../lib/dom.js';
import {errorMessage, fmt, gettext, inPageLanguage, money} from '../lib/format.js';
import {mountCard, paymentReady, paymentsConfigured, waitFor} from '../lib/payments.js';
import {productImage} from '../lib/photos.js';

export function mountCheckout({roomId}) {
  const config = pageConfig();
  const dialog = $('#checkout');
  const form = $('#checkout-form');
  const payButton = $('#checkout-pay');
  const errorLine = $('#checkout-error');
  const statusLine = $('#checkout-status');
  let current = null; // {item, shelf}
  let order = null; // the order placed in this sheet, until paid or cancelled
  let orderBody = null; // its JSON, to know when the form changed
  let idempotencyKey = null;
  let card = null;
  let busy = false;
  let paid = false;

  function quantity() {
    return Math.max(1, Number(form.elements.quantity.value) || 1);
  }

  function updateTotal() {
    if (!current) return;
    const price = current.shelf.priceOf(current.item);
    $('#checkout-total').textContent = money(price * quantity(), current.item.currency);
  }

  function body() {
    const f = form.elements;
    return {
      room: roomId,
      items: [{item: current.item.id, quantity: quantity()}],
      shipping: {name: f.name.value.trim(), phone: f.phone.value.trim(), address: f.address.value.trim(), district: f.district.value.trim()},
    };
  }

  async function placeOrder() {
    const next = body();
    const text = JSON.stringify(next);
    if (order && text === orderBody) return order;
    if (order) await cancel(); // the form changed: a new order for the new one
    if (text !== orderBody) idempotencyKey = randomId();
    orderBody = text;
    order = await post('/orders/', next, {idempotencyKey});
    return order;
  }

  async function cancel() {
    const unpaid = order;
    order = null;
    orderBody = null;
    if (unpaid && !paid) {
      try {
        await post(`/orders/${unpaid.id}/cancel/`);
      } catch (err) {
        // Paid meanwhile, or already expired: either way nothing is held for nothing.
        if (!(err instanceof ApiError)) throw err;
      }
    }
  }

  async function pay() {
    if (busy || paid) return;
    if (!form.reportValidity()) return;
    if (!card || !card.complete) {
      // Before the order holds any stock: a card half typed is the buyer's to finish.
      say(errorLine, gettext('Enter the whole card: number, expiry date and security code.'));
      return;
    }
    busy = true;
    payButton.disabled = true;
    say(errorLine, '');
    say(statusLine, gettext('Placing your order…'));
    try {
      const placed = await placeOrder();
      if (!placed.payment.client_secret) say(statusLine, fmt(gettext('Order %(number)s: preparing the payment…'), {number: placed.number}));
      const payment = await paymentReady(placed);
      if (!payment) {
        say(statusLine, '');
        say(errorLine, gettext('The payment is taking longer than usual. Press Pay again in a moment.'));
        return;
      }
      say(statusLine, fmt(gettext('Order %(number)s: paying %(total)s…'), {number: placed.number, total: money(placed.total, placed.currency)}));
      const result = await card.confirm(payment.client_secret, form.elements.name.value.trim());
      if (result.error) {
        say(statusLine, '');
        say(errorLine, result.error.message);
        return;
      }
      say(statusLine, gettext('Payment sent. Waiting for the confirmation…'));
      const final = await waitFor(() => get(`/orders/${placed.id}/`), (o) => o.status !== 'pending_payment');
      if (final.status === 'paid') {
        paid = true;
        say(statusLine, fmt(gettext('Paid! Order %(number)s is on its way soon.'), {number: final.number}));
        statusLine.append(' ', h('a', {href: `/orders/${final.id}/`, 'data-testid': 'order-link'}, gettext('See the order')));
        statusLine.dataset.orderStatus = 'paid';
        payButton.textContent = gettext('Done');
        payButton.disabled = false;
        payButton.onclick = () => dialog.close();
      } else if (final.status === 'pending_payment') {
        say(statusLine, gettext('The payment is being confirmed; the order page shows when it is done.'));
        statusLine.append(' ', h('a', {href: `/orders/${final.id}/`, 'data-testid': 'order-link'}, gettext('See the order')));
      } else {
        say(statusLine, '');
        say(errorLine, fmt(gettext('The order is %(status)s.'), {status: final.status}));
      }
    } catch (err) {
      say(statusLine, '');
      say(errorLine, errorMessage(err));
      if (err instanceof ApiError && err.status === 409) {
        order = null;
        orderBody = null;
      }
    } finally {
      busy = false;
      if (!paid) payButton.disabled = false;
    }
  }

  async function open(item, shelf) {
    if (!config.user) {
      location.href = config.login_url;
      return;
    }
    current = {item, shelf};
    paid = false;
    order = null;
    orderBody = null;
    payButton.textContent = gettext('Pay');
    payButton.onclick = pay;
    payButton.disabled = false;
    delete statusLine.dataset.orderStatus;
    say(errorLine, '');
    say(statusLine, '');
    form.elements.quantity.value = '1';
    $('#checkout-item').replaceChildren(
      productImage(item.product.image, inPageLanguage(item.product, 'title'), {box: 72}) || '',
      h('strong', {}, inPageLanguage(item.product, 'title')), ' ', h('span', {class: 'sku'}, inPageLanguage(item, 'sku_name')),
      ' · ', h('span', {}, money(shelf.priceOf(item), item.currency)),
    );
    updateTotal();
    // Stripe's test cards work only with a test key: no hint in production.
    show($('.test-card'), String((config.stripe || {}).publishable_key).startsWith('pk_test'));
    dialog.showModal();
    if (!paymentsConfigured()) {
      say(errorLine, gettext('Payments are not set up on this server.'));
      payButton.disabled = true;
      return;
    }
    try {
      card = await mountCard($('#card-element'));
    } catch (err) {
      say(errorLine, gettext('The payment form could not be loaded. Check your connection and try again.'));
      payButton.disabled = true;
    }
  }

  form.elements.quantity.addEventListener('input', updateTotal);
  dialog.addEventListener('close', () => {
    if (card) card.destroy();
    card = null;
    if (!busy) cancel();
  });

  return {open};
}
