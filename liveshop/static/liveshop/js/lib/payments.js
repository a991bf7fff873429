// Paying with Stripe.js: the page loads it from STRIPE_JS_URL (Stripe's own in
// production; localstripe's stand-in in `make run` and the tests) and confirms the
// PaymentIntent the API created, with the card typed into Stripe's card element. The
// order (or top-up) turns paid only from Stripe's webhook on the server: the page then
// waits for the API to say so.

import {post} from './api.js';
import {pageConfig} from './dom.js';
import {gettext} from './format.js';

let stripePromise = null;

export function paymentsConfigured() {
  const {stripe} = pageConfig();
  return Boolean(stripe && stripe.publishable_key && stripe.js_url);
}

export function loadStripe() {
  if (!stripePromise) {
    const {stripe} = pageConfig();
    stripePromise = new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = stripe.js_url;
      // Stripe.js labels its card field in the page's language.
      script.onload = () => resolve(window.Stripe(stripe.publishable_key, {locale: stripeLocale()}));
      script.onerror = () => {
        stripePromise = null;
        reject(new Error('Stripe.js could not be loaded'));
      };
      document.head.append(script);
    });
  }
  return stripePromise;
}

function stripeLocale() {
  const lang = (document.documentElement.lang || '').toLowerCase();
  if (lang.startsWith('zh')) return 'zh';
  return lang.startsWith('en') ? 'en' : 'auto';
}

// Stripe's error codes (and decline codes), in the page's language; Stripe's own
// messages are English whatever the page says.
const PAYMENT_ERRORS = {
  incomplete_number: gettext('The card number is incomplete.'),
  invalid_number: gettext('The card number is not valid.'),
  incorrect_number: gettext('The card number is not valid.'),
  incomplete_expiry: gettext('The expiry date is incomplete.'),
  invalid_expiry_month: gettext('The expiry date is not valid.'),
  invalid_expiry_year: gettext('The expiry date is not valid.'),
  invalid_expiry_year_past: gettext('The card has expired.'),
  expired_card: gettext('The card has expired.'),
  incomplete_cvc: gettext('The security code is incomplete.'),
  invalid_cvc: gettext('The security code is not valid.'),
  incorrect_cvc: gettext('The security code is not correct.'),
  insufficient_funds: gettext('The card has insufficient funds.'),
  card_declined: gettext('The card was declined. Try another card.'),
  processing_error: gettext('The card could not be processed. Try again.'),
  payment_intent_authentication_failure: gettext('The card was not verified. Try again or use another card.'),
  payment_intent_unexpected_state: gettext('This payment has already been handled. Reload the page.'),
  api_connection_error: gettext('The payment service could not be reached. Check your connection and try again.'),
};

/** A Stripe.js error as the page's language says it. */
export function paymentErrorMessage(error) {
  const known = error && (PAYMENT_ERRORS[error.decline_code] || PAYMENT_ERRORS[error.code] || PAYMENT_ERRORS[error.type]);
  return known || gettext('The payment did not go through. Check the card and try again.');
}

/** A card element mounted in `container`; call .destroy() when done. */
export async function mountCard(container) {
  const stripe = await loadStripe();
  const card = stripe.elements().create('card', {hidePostalCode: true});
  container.replaceChildren();
  card.mount(container);
  let complete = false;
  card.on('change', (event) => {
    complete = Boolean(event.complete);
  });
  return {
    stripe,
    card,
    /** Whether number, expiry and security code are all typed and look valid. */
    get complete() {
      return complete;
    },
    destroy: () => card.destroy(),
    /** -> {paymentIntent} or {error: {message, code}} as Stripe.js answers, the message
     *  in the page's language */
    confirm: async (clientSecret, name) => {
      const result = await stripe.confirmCardPayment(clientSecret, {
        payment_method: {card, billing_details: name ? {name} : {}},
      });
      if (result.error) result.error = {...result.error, message: paymentErrorMessage(result.error)};
      return result;
    },
  };
}

/** Poll `read()` until `done(value)` or the time is up; resolves to the last value. */
export async function waitFor(read, done, {timeoutMs = 60000, everyMs = 700} = {}) {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, everyMs));
    value = await read();
  }
  return value;
}

/**
 * An order's payment with its client secret. During a flash sale's burst the PaymentIntent
 * may still be `preparing` (Stripe's rate limit): ask POST /orders/{id}/payment/ until it
 * is there (a few seconds). Resolves to the payment, or null if it did not come in time.
 */
export async function paymentReady(order) {
  if (order.payment && order.payment.client_secret) return order.payment;
  const payment = await waitFor(
    () => post(`/orders/${order.id}/payment/`),
    (p) => Boolean(p.client_secret) || p.status !== 'preparing',
    {timeoutMs: 120000, everyMs: 1000},
  );
  return payment.client_secret ? payment : null;
}
