// Red envelopes (CONTRACT.md): the snapshot's `red_envelopes`, red_envelope.dropped
// {red_envelope}, red_envelope.empty {red_envelope: id}. Viewers see the newest envelope
// counting down to `opens_at`, then tap it: POST /red-envelopes/{id}/grab/ answers the
// share won (201, or 200 when asked again) or `red_envelope_empty`; once the envelope is
// empty or expired, GET /red-envelopes/{id}/ lists who got what. The host drops one from
// the studio (POST /rooms/{id}/red-envelopes/ with an Idempotency-Key), paid from the
// wallet whose balance the form shows (GET /wallet/).

import {ApiError, get, post} from '../lib/api.js';
import {$, h, randomId, say, show} from '../lib/dom.js';
import {clock, errorMessage, fmt, gettext} from '../lib/format.js';
import {everyTick, setText} from '../lib/shelf-state.js';

export function mountRedEnvelopes({roomId, config, host = false}) {
  const panel = $('#red-envelope-panel');
  const box = $('#red-envelopes');
  const errorLine = $('#red-envelope-error');
  const envelopes = new Map(); // id -> envelope (as GET /red-envelopes/{id}/ shows it)
  const won = new Map(); // id -> coins this user got, or 0: all gone
  const grabs = new Map(); // id -> [{user, coins}] once closed

  const opensIn = (envelope) => new Date(envelope.opens_at) - Date.now();
  const closed = (envelope) => envelope.status === 'empty' || envelope.status === 'expired'
    || new Date(envelope.expires_at) <= Date.now();

  async function grab(envelope) {
    if (!config.user) {
      location.href = config.login_url;
      return;
    }
    say(errorLine, '');
    try {
      const share = await post(`/red-envelopes/${envelope.id}/grab/`);
      won.set(envelope.id, share.coins);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'red_envelope_empty') won.set(envelope.id, 0);
      else say(errorLine, errorMessage(err));
    }
    render();
  }

  async function loadGrabs(envelope) {
    try {
      const detail = await get(`/red-envelopes/${envelope.id}/`);
      envelopes.set(envelope.id, detail);
      if (detail.grabs) grabs.set(envelope.id, detail.grabs);
      render();
    } catch (err) {
      console.warn('red envelope unavailable', err);
    }
  }

  function card(envelope) {
    const node = h('article', {class: `red-envelope ${envelope.status}`, dataset: {envelope: envelope.id}, 'data-testid': 'red-envelope'},
      h('p', {class: 'red-envelope-title'}, '🧧 ', fmt(gettext('%(coins)s coins in %(shares)s shares'), envelope)),
    );
    if (envelope.followers_only) node.append(h('p', {class: 'hint'}, gettext('For the host’s followers')));
    const mine = won.get(envelope.id);
    if (mine !== undefined) {
      node.append(mine > 0
        ? h('p', {class: 'red-envelope-won', 'data-testid': 'red-envelope-won'}, fmt(gettext('You got %(coins)s coins!'), {coins: mine}))
        : h('p', {class: 'red-envelope-gone', 'data-testid': 'red-envelope-gone'}, gettext('All gone: better luck next time.')));
    } else if (closed(envelope)) {
      node.append(h('p', {class: 'red-envelope-gone', 'data-testid': 'red-envelope-gone'}, gettext('All gone.')));
    } else if (opensIn(envelope) > 0) {
      node.append(h('p', {}, gettext('Opens in'), ' ',
        h('span', {class: 'countdown', 'data-testid': 'red-envelope-countdown', dataset: {opensAt: envelope.opens_at}}, clock(opensIn(envelope)))));
    } else if (!host) {
      node.append(h('button', {class: 'red-envelope-open', type: 'button', onclick: () => grab(envelope), 'data-testid': 'red-envelope-open'}, gettext('Open')));
    } else {
      node.append(h('p', {'data-testid': 'red-envelope-left'}, fmt(gettext('%(left)s of %(shares)s shares left'), {left: envelope.remaining_shares, shares: envelope.shares})));
    }
    const list = grabs.get(envelope.id);
    if (list) {
      node.append(h('ul', {class: 'red-envelope-grabs', 'data-testid': 'red-envelope-grabs'},
        list.length ? list.map((g) => h('li', {}, fmt(gettext('%(name)s: %(coins)s coins'), {name: g.user.display_name, coins: g.coins})))
          : h('li', {}, gettext('Nobody grabbed a share.'))));
    } else if (closed(envelope) || (mine !== undefined)) {
      node.append(h('button', {class: 'link', type: 'button', onclick: () => loadGrabs(envelope), 'data-testid': 'red-envelope-who'}, gettext('Who got what')));
    }
    return node;
  }

  function render() {
    const newest = [...envelopes.values()].sort((a, b) => b.id - a.id).slice(0, host ? 3 : 1);
    show(panel, newest.length > 0 || host);
    box.replaceChildren(...newest.map(card));
  }

  // The countdown, and the moment it opens (the card then offers "Open").
  everyTick(() => {
    for (const node of box.querySelectorAll('[data-opens-at]')) {
      const left = new Date(node.dataset.opensAt) - Date.now();
      if (left > 0) setText(node, clock(left));
      else render();
    }
  });

  if (host) {
    const form = $('#red-envelope-form');
    const balance = $('#red-envelope-wallet');
    const refreshBalance = async () => {
      try {
        balance.textContent = (await get('/wallet/')).coins;
      } catch (err) {
        console.warn('wallet unavailable', err);
      }
    };
    refreshBalance();
    form.addEventListener('submit', async (submit) => {
      submit.preventDefault();
      const f = form.elements;
      const body = {coins: Number(f.coins.value), shares: Number(f.shares.value), opens_in_s: Number(f.opens_in_s.value)};
      if (f.followers_only.checked) body.followers_only = true;
      say(errorLine, '');
      try {
        const created = await post(`/rooms/${roomId}/red-envelopes/`, body, {idempotencyKey: randomId()});
        envelopes.set(created.id, created);
        render();
      } catch (err) {
        say(errorLine, errorMessage(err));
      }
      refreshBalance();
    });
  }

  return {
    events: {
      'room.snapshot': (event) => {
        for (const envelope of event.data.red_envelopes || []) envelopes.set(envelope.id, envelope);
        render();
      },
      'red_envelope.dropped': (event) => {
        envelopes.set(event.data.red_envelope.id, event.data.red_envelope);
        render();
      },
      'red_envelope.empty': (event) => {
        const envelope = envelopes.get(event.data.red_envelope);
        if (envelope) {
          envelopes.set(envelope.id, {...envelope, status: 'empty', remaining_shares: 0});
          render();
        }
      },
    },
  };
}
