// Paying with Stripe.js: the page loads it from STRIPE_JS_URL (Stripe's own in
// production; localstripe's stand-in in `make run` and the tests) and confirms the
// PaymentIntent the API created, with the card typed into Stripe's card element. The
// order (or top-up) turns paid only from Stripe's webhook on the server: the page then
// waits for the API to say so.

import {pageConfig} from './dom.js';

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
      script.onload = () => resolve(window.Stripe(stripe.publishable_key));
      script.onerror = () => {
        stripePromise = null;
        reject(new Error('Stripe.js could not be loaded'));
      };
      document.head.append(script);
    });
  }
  return stripePromise;
}

/** A card element mounted in `container`; call .destroy() when done. */
export async function mountCard(container) {
  const stripe = await loadStripe();
  const card = stripe.elements().create('card', {hidePostalCode: true});
  container.replaceChildren();
  card.mount(container);
  return {
    stripe,
    card,
    destroy: () => card.destroy(),
    /** -> {paymentIntent} or {error: {message, code}} as Stripe.js answers */
    confirm: (clientSecret, name) =>
      stripe.confirmCardPayment(clientSecret, {
        payment_method: {card, billing_details: name ? {name} : {}},
      }),
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
