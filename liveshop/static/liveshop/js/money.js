// "My money" (/money/): for each of the user's shops and its host profile, the balance
// (GET /{shops|hosts}/{id}/balance/), a statement for a period (…/statement/, with its
// CSV), the payouts (GET /payouts/), where they are paid (…/payout-account/), and a
// host's gift coins cashed out (POST /wallet/cash-outs/).

import {get, getAll, post} from './lib/api.js';
import {$, h, pageConfig, randomId, say} from './lib/dom.js';
import {dateTime, errorMessage, fmt, gettext, money} from './lib/format.js';

const config = pageConfig();

const LINE_LABELS = {
  sale: gettext('Sale'),
  refund: gettext('Refund'),
  fee: gettext('Platform fee'),
  commission: gettext('Host commission'),
  gift_earnings: gettext('Gift coins cashed out'),
  payout: gettext('Payout'),
  payout_netted: gettext('Refunds netted from a payout'),
  payout_returned: gettext('Payout returned'),
  adjustment: gettext('Adjustment'),
};
const PAYOUT_STATUS = {
  pending: gettext('waiting for approval'),
  approved: gettext('approved'),
  sent: gettext('sent'),
  paid: gettext('paid'),
  failed: gettext('failed'),
};

const isoDay = (date) => date.toISOString().slice(0, 10);

async function loadBalance(section, base) {
  const list = $('.balance', section);
  const balance = await get(`${base}/balance/`);
  const row = (label, value, key) => h('div', {},
    h('dt', {}, label), h('dd', {'data-testid': `balance-${key}`}, money(value, balance.currency)));
  list.replaceChildren(
    row(gettext('Pending'), balance.pending, 'pending'),
    row(gettext('Available'), balance.available, 'available'),
    row(gettext('In a payout'), balance.in_payout, 'in-payout'),
    row(gettext('Paid out'), balance.paid_out, 'paid-out'),
  );
  list.removeAttribute('aria-busy');
}

// Where the money goes: a Stripe account once onboarded, else a bank transfer. The
// button asks for Stripe's onboarding link (POST …/payout-account/ {stripe: true}) and
// opens it; Stripe sends the payee back here.
async function loadPayoutAccount(section, base) {
  const account = await get(`${base}/payout-account/`);
  const line = $('[data-testid=payout-account]', section);
  const button = $('[data-testid=connect-stripe]', section);
  line.textContent = account.transfers_enabled
    ? gettext('Payouts go to your Stripe account.')
    : gettext('Payouts go by bank transfer until you connect a Stripe account.');
  button.hidden = account.transfers_enabled;
  button.onclick = async () => {
    try {
      const answer = await post(`${base}/payout-account/`, {stripe: true});
      if (answer.onboarding_url) window.location.assign(answer.onboarding_url);
      else await loadPayoutAccount(section, base);
    } catch (err) {
      say($('#money-error'), errorMessage(err));
    }
  };
}

async function loadStatement(section, base) {
  const form = $('.statement-period', section);
  const query = `from=${form.elements.from.value}&to=${form.elements.to.value}`;
  $('.csv', section).href = `/api/v1${base}/statement/?${query}&format=csv`;
  const statement = await get(`${base}/statement/?${query}`);
  const cur = statement.currency;
  const total = (label, amount, key) => h('tr', {class: 'total'},
    h('th', {colspan: 3}, label), h('td', {class: 'num', 'data-testid': key}, money(amount, cur)));
  $('tbody', section).replaceChildren(...statement.lines.map((line) => h('tr', {'data-testid': 'statement-line'},
    h('td', {}, dateTime(line.at)),
    h('td', {}, LINE_LABELS[line.kind] || line.kind),
    h('td', {}, line.order || (line.payout ? fmt(gettext('payout %(id)s'), {id: line.payout}) : '')),
    h('td', {class: 'num'}, money(line.amount, cur)),
  )));
  $('tfoot', section).replaceChildren(
    total(gettext('Opening balance'), statement.opening, 'statement-opening'),
    total(gettext('Closing balance'), statement.closing, 'statement-closing'),
  );
}

function payoutsOf(section, payouts) {
  const mine = payouts.filter((p) => p.payee.kind === section.dataset.kind && String(p.payee.id) === section.dataset.id);
  $('.payouts', section).replaceChildren(...(mine.length ? mine.map((p) => h('li', {'data-testid': 'payout'},
    fmt(gettext('%(start)s to %(end)s: %(amount)s, %(status)s'), {
      start: p.period_start, end: p.period_end, amount: money(p.amount, p.currency), status: PAYOUT_STATUS[p.status] || p.status,
    }))) : [h('li', {class: 'hint'}, gettext('No payouts yet.'))]));
}

async function setUp(section, payouts) {
  const base = `/${section.dataset.kind === 'shop' ? 'shops' : 'hosts'}/${section.dataset.id}`;
  const form = $('.statement-period', section);
  const today = new Date();
  form.elements.from.value = isoDay(new Date(today.getFullYear(), today.getMonth(), 1, 12));
  form.elements.to.value = isoDay(today);
  const refresh = async () => {
    try {
      await Promise.all([loadBalance(section, base), loadStatement(section, base), loadPayoutAccount(section, base)]);
    } catch (err) {
      say($('#money-error'), errorMessage(err));
    }
  };
  form.addEventListener('submit', (event) => { event.preventDefault(); refresh(); });
  const cashOut = $('.cash-out', section);
  if (cashOut) {
    cashOut.addEventListener('submit', async (event) => {
      event.preventDefault();
      const status = $('[role=status]', cashOut);
      try {
        const done = await post('/wallet/cash-outs/', {coins: Number(cashOut.elements.coins.value)}, {idempotencyKey: randomId()});
        status.textContent = fmt(gettext('%(coins)s coins cashed out for %(amount)s.'), {coins: done.coins, amount: money(done.amount, done.currency)});
        cashOut.reset();
        await refresh();
      } catch (err) {
        status.textContent = errorMessage(err);
      }
    });
  }
  payoutsOf(section, payouts);
  await refresh();
}

getAll('/payouts/').then(
  (payouts) => document.querySelectorAll('.payee').forEach((section) => setUp(section, payouts)),
  (err) => say($('#money-error'), errorMessage(err)),
);
