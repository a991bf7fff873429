// liveshop's addition to localstripe's Stripe.js stand-in, served after it at
// /js.stripe.com/v3/ by orders/localstripe_server.py.
//
// localstripe's `confirmCardPayment` only completes a 3-D Secure step: it ignores the
// card typed into its card element, so a PaymentIntent created without a payment
// method (as liveshop creates them) can never be paid from a page. Stripe.js pays it by
// sending the card with the intent's client secret and the publishable key to
// `POST /v1/payment_intents/{id}/confirm`; this does the same against localstripe
// (orders/localstripe_server.py answers that call), then hands a card that asks for
// 3-D Secure to localstripe's own confirmation dialog. Pages call it exactly as they
// call Stripe.js: `stripe.confirmCardPayment(clientSecret, {payment_method: {card}})`.
(function () {
  const localstripe = Stripe;
  Stripe = (apiKey, options) => {
    const stripe = localstripe(apiKey, options);
    const authenticate = stripe.confirmCardPayment;
    stripe.confirmCardPayment = async (clientSecret, data) => {
      const method = (data && data.payment_method) || {};
      const element = method.card;
      if (!element || typeof element !== 'object' || !('_inputs' in element)) {
        return authenticate(clientSecret, data);
      }
      if (!element.value || !element.value.card.number) {
        return {error: {type: 'validation_error', code: 'incomplete_number',
                        message: 'Your card number is incomplete.'}};
      }
      const match = /^(pi_\w+)_secret_/.exec(clientSecret || '');
      if (!match) {
        return {error: {type: 'invalid_request_error', message: 'Invalid client secret.'}};
      }
      let response;
      try {
        response = await fetch(`${LOCALSTRIPE_BASE_API}/v1/payment_intents/${match[1]}/confirm`, {
          method: 'POST',
          body: JSON.stringify({
            key: apiKey,
            client_secret: clientSecret,
            payment_method_data: {
              type: 'card',
              card: element.value.card,
              billing_details: method.billing_details || {},
            },
          }),
        });
      } catch (err) {
        return {error: {type: 'api_connection_error', message: String(err)}};
      }
      const body = await response.json().catch(() => ({}));
      if (response.status !== 200 || body.error) {
        return {error: body.error || {type: 'api_error', message: `HTTP ${response.status}`}};
      }
      if (body.status === 'requires_action') {
        return authenticate(clientSecret, data);
      }
      return {paymentIntent: body};
    };
    return stripe;
  };
})();
