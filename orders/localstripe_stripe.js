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
//
// It also replaces localstripe's card element (four bare inputs named after the API's
// fields, behind a "localstripe:" label) with one that reads like Stripe's: card number
// (spaces and dashes allowed, grouped as typed), MM / YY, CVC, labelled in the language
// the page asked for (`Stripe(key, {locale})`), checked as Stripe.js checks them
// (length, Luhn, a date not past), with Stripe's error codes.
(function () {
  const LABELS = {
    en: {number: 'Card number', expiry: 'MM / YY', cvc: 'CVC', postal: 'Postal code'},
    zh: {number: '卡号', expiry: '月 / 年', cvc: '安全码', postal: '邮编'},
  };
  const digits = (text) => String(text || '').replace(/[\s-]/g, '');

  function luhn(number) {
    let sum = 0;
    for (let i = 0; i < number.length; i += 1) {
      let d = Number(number[number.length - 1 - i]);
      if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
      sum += d;
    }
    return sum % 10 === 0;
  }

  /** What Stripe.js would say of the card as typed: null, or {code, message}. */
  function cardError(value) {
    const {number, exp_month: month, exp_year: year, cvc} = value.card;
    if (!number) return {code: 'incomplete_number', message: 'Your card number is incomplete.'};
    if (!/^\d+$/.test(number)) return {code: 'invalid_number', message: 'Your card number is invalid.'};
    if (number.length < 13) return {code: 'incomplete_number', message: 'Your card number is incomplete.'};
    if (number.length > 19 || !luhn(number)) return {code: 'invalid_number', message: 'Your card number is invalid.'};
    if (!month || !year) return {code: 'incomplete_expiry', message: "Your card's expiration date is incomplete."};
    if (month < 1 || month > 12) return {code: 'invalid_expiry_month', message: "Your card's expiration date is invalid."};
    const now = new Date();
    if (year < now.getFullYear() || (year === now.getFullYear() && month < now.getMonth() + 1)) {
      return {code: 'invalid_expiry_year_past', message: "Your card's expiration year is in the past."};
    }
    if (!/^\d{3,4}$/.test(cvc)) return {code: 'incomplete_cvc', message: "Your card's security code is incomplete."};
    return null;
  }

  class CardElement {
    constructor(options, locale) {
      this._options = options || {};
      this._labels = LABELS[String(locale || document.documentElement.lang || 'en').slice(0, 2)] || LABELS.en;
      this._inputs = {};
      this._handlers = {change: []};
      this._box = null;
    }

    mount(target) {
      const parent = typeof target === 'string' ? document.querySelector(target) : target;
      const box = document.createElement('div');
      box.className = 'card-fields';
      box.style.cssText = 'display:flex;flex-wrap:wrap;gap:6px';
      // Not `required`: the page's own form must not wait on them (Stripe's live in an iframe).
      const field = (name, attrs, flex) => {
        const input = document.createElement('input');
        Object.assign(input, {name: `card-${name}`, type: 'text', inputMode: 'numeric'}, attrs);
        input.setAttribute('aria-label', attrs.placeholder);
        input.dataset.field = name;
        input.style.cssText = `flex:${flex};min-width:0`;
        input.addEventListener('input', () => this._changed(name));
        this._inputs[name] = input;
        box.append(input);
      };
      field('number', {placeholder: this._labels.number, autocomplete: 'cc-number', maxLength: 23}, '1 1 100%');
      field('expiry', {placeholder: this._labels.expiry, autocomplete: 'cc-exp', maxLength: 7}, '1 1 40%');
      field('cvc', {placeholder: this._labels.cvc, autocomplete: 'cc-csc', maxLength: 4}, '1 1 25%');
      if (!this._options.hidePostalCode) {
        field('postal', {placeholder: this._labels.postal, autocomplete: 'postal-code', maxLength: 10}, '1 1 25%');
        this._inputs.postal.inputMode = 'text';
      }
      parent.replaceChildren(box);
      this._box = box;
    }

    _changed(name) {
      const input = this._inputs[name];
      if (name === 'number') {
        // Grouped in fours as typed, as Stripe's field shows it.
        const grouped = digits(input.value).replace(/\D/g, '').slice(0, 19).replace(/(\d{4})(?=\d)/g, '$1 ');
        if (grouped !== input.value) input.value = grouped;
      } else if (name === 'expiry') {
        const d = input.value.replace(/\D/g, '').slice(0, 4);
        const shown = d.length > 2 ? `${d.slice(0, 2)} / ${d.slice(2)}` : d;
        if (shown !== input.value && !/\/\s*$/.test(input.value)) input.value = shown;
      }
      const error = cardError(this.value);
      for (const handler of this._handlers.change) handler({complete: !error, error: undefined, empty: false});
    }

    get value() {
      const expiry = (this._inputs.expiry ? this._inputs.expiry.value : '').replace(/\D/g, '');
      const year = expiry.slice(2);
      return {
        card: {
          number: digits(this._inputs.number ? this._inputs.number.value : ''),
          exp_month: expiry.length >= 2 ? Number(expiry.slice(0, 2)) : null,
          exp_year: year.length === 2 ? 2000 + Number(year) : year.length === 4 ? Number(year) : null,
          cvc: this._inputs.cvc ? this._inputs.cvc.value.trim() : '',
        },
        postal_code: this._inputs.postal ? this._inputs.postal.value.trim() : '',
      };
    }

    on(event, handler) {
      (this._handlers[event] = this._handlers[event] || []).push(handler);
    }

    focus() {
      if (this._inputs.number) this._inputs.number.focus();
    }

    clear() {
      for (const input of Object.values(this._inputs)) input.value = '';
    }

    unmount() {
      if (this._box) this._box.remove();
      this._box = null;
    }

    destroy() {
      this.unmount();
    }
  }

  const localstripe = Stripe;
  Stripe = (apiKey, options) => {
    const stripe = localstripe(apiKey, options);
    const locale = options && options.locale;
    stripe.elements = () => ({create: (type, elementOptions) => new CardElement(elementOptions, locale)});
    const authenticate = stripe.confirmCardPayment;
    stripe.confirmCardPayment = async (clientSecret, data) => {
      const method = (data && data.payment_method) || {};
      const element = method.card;
      if (!element || typeof element !== 'object' || !('_inputs' in element)) {
        return authenticate(clientSecret, data);
      }
      const invalid = cardError(element.value);
      if (invalid) return {error: {type: 'validation_error', ...invalid}};
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
