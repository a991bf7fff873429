// Gifts, the wallet and top-ups (CONTRACT.md, "Wallet, gifts and giveaways"):
//   GET /gifts/ (catalog; a 404 means the server has no gifts: the panel stays hidden),
//   GET /wallet/ {coins}, POST /wallet/top-ups/ {coins} -> {payment: {client_secret}},
//   POST /rooms/{id}/gifts/ {gift, quantity} -> {balance} (402 insufficient_coins),
//   GET /rooms/{id}/gifts/leaderboard/ [{user, coins}], event gift.sent.

import {available, get, post} from '../lib/api.js';
import {$, h, randomId, say, show} from '../lib/dom.js';
import {errorMessage, fmt, gettext, inPageLanguage, money, ngettext} from '../lib/format.js';
import {mountCard, paymentsConfigured, waitFor} from '../lib/payments.js';

export async function mountGifts({roomId, config}) {
  const panel = $('#gift-panel');
  const errorLine = $('#gift-error');
  const coins = $('#wallet-coins');
  let balance = null;
  let refreshTimer = null;

  if (!(await available('/gifts/'))) return {events: {}};
  const catalog = await get('/gifts/');
  show(panel);

  function setBalance(value) {
    balance = value;
    coins.textContent = value === null ? '–' : String(value);
  }

  async function refreshLeaderboard() {
    refreshTimer = null;
    const rows = await get(`/rooms/${roomId}/gifts/leaderboard/`).catch(() => []);
    $('#leaderboard').replaceChildren(
      ...rows.slice(0, 10).map((row) => h('li', {}, h('span', {}, row.user.display_name), h('strong', {}, row.coins))),
    );
  }

  async function send(gift) {
    if (!config.user) {
      location.href = config.login_url;
      return;
    }
    say(errorLine, '');
    try {
      const sent = await post(`/rooms/${roomId}/gifts/`, {gift: gift.id, quantity: 1}, {idempotencyKey: randomId()});
      setBalance(sent.balance);
    } catch (err) {
      say(errorLine, errorMessage(err));
    }
  }

  $('#gift-catalog').replaceChildren(
    ...catalog.map((gift) =>
      h('button', {class: 'gift', type: 'button', onclick: () => send(gift), 'data-testid': 'gift'},
        gift.image_url ? h('img', {src: gift.image_url, alt: ''}) : '🎁',
        h('span', {}, inPageLanguage(gift, 'name')), h('small', {}, fmt(ngettext('%(n)s coin', '%(n)s coins', gift.coins), {n: gift.coins}))),
    ),
  );

  if (config.user) {
    setBalance((await get('/wallet/')).coins);
    const form = $('#top-up-form');
    show(form, paymentsConfigured());
    form.addEventListener('submit', async (submit) => {
      submit.preventDefault();
      say(errorLine, '');
      const wanted = Number(form.elements.coins.value);
      try {
        const topUp = await post('/wallet/top-ups/', {coins: wanted}, {idempotencyKey: randomId()});
        const box = $('#top-up-payment');
        show(box);
        box.replaceChildren(h('p', {}, fmt(gettext('%(coins)s coins for %(amount)s'), {coins: topUp.coins, amount: money(topUp.amount, topUp.currency)})));
        const cardBox = h('div', {class: 'card-element'});
        const payButton = h('button', {class: 'button primary', type: 'button'}, gettext('Pay'));
        box.append(cardBox, payButton);
        const card = await mountCard(cardBox);
        payButton.onclick = async () => {
          payButton.disabled = true;
          const result = await card.confirm(topUp.payment.client_secret);
          if (result.error) {
            say(errorLine, result.error.message);
            payButton.disabled = false;
            return;
          }
          const before = balance ?? 0;
          const wallet = await waitFor(() => get('/wallet/'), (w) => w.coins >= before + topUp.coins);
          setBalance(wallet.coins);
          card.destroy();
          box.replaceChildren();
          show(box, false);
        };
      } catch (err) {
        say(errorLine, errorMessage(err));
      }
    });
  }
  refreshLeaderboard();

  return {
    events: {
      'gift.sent': (event) => {
        const {user, gift, quantity} = event.data;
        const burst = h('p', {class: 'burst'}, '🎁 ', fmt(gettext('%(name)s sent %(gift)s ×%(n)s'), {name: user.display_name, gift: inPageLanguage(gift, 'name'), n: quantity}));
        burst.addEventListener('animationend', () => burst.remove());
        $('#gift-burst').append(burst);
        if (!refreshTimer) refreshTimer = setTimeout(refreshLeaderboard, 1000);
      },
    },
  };
}
