// Giveaways (CONTRACT.md): the snapshot's `giveaways`, giveaway.started {giveaway},
// giveaway.drawn {giveaway: id, winners, seed}. Viewers enter with
// POST /giveaways/{id}/entries/ (or by commenting the keyword), winners claim with
// POST /giveaways/{id}/claim/ {shipping} when the giveaway has a prize; the private
// giveaway.entered {giveaway} says a keyword comment entered them; every drawn giveaway links to its
// verification page (/giveaways/{id}/verify/). The host starts one with
// POST /rooms/{id}/giveaways/ and may cancel it (POST /giveaways/{id}/cancel/).

import {ApiError, post} from '../lib/api.js';
import {$, h, say, show} from '../lib/dom.js';
import {clock, errorMessage, fmt, gettext} from '../lib/format.js';
import {everyTick, setText} from '../lib/shelf-state.js';

const SHOWN = 3;

export function mountGiveaways({roomId, config, host = false}) {
  const panel = $('#giveaway-panel');
  const box = $('#giveaways');
  const errorLine = $('#giveaway-error');
  const giveaways = new Map(); // id -> giveaway (as GET /giveaways/{id}/ shows it)
  const entered = new Set();
  let you = {user_id: null};

  function countdown(giveaway) {
    return h('span', {class: 'countdown', 'data-testid': 'giveaway-countdown', dataset: {closesAt: giveaway.closes_at}},
      clock(new Date(giveaway.closes_at) - Date.now()));
  }

  async function enter(giveaway) {
    if (!config.user) {
      location.href = config.login_url;
      return;
    }
    say(errorLine, '');
    try {
      await post(`/giveaways/${giveaway.id}/entries/`);
      entered.add(giveaway.id);
      render();
    } catch (err) {
      say(errorLine, errorMessage(err));
    }
  }

  function claimForm(giveaway) {
    const form = h('form', {class: 'stack claim', 'data-testid': 'giveaway-claim'},
      h('p', {}, gettext('You won! Where should we send the prize?')),
      h('input', {name: 'name', required: true, placeholder: gettext('Name'), maxlength: 64}),
      h('input', {name: 'phone', required: true, placeholder: gettext('Phone'), maxlength: 32, type: 'tel'}),
      h('input', {name: 'address', required: true, placeholder: gettext('Address'), maxlength: 300}),
      h('input', {name: 'district', required: true, placeholder: gettext('District'), maxlength: 64}),
      h('button', {class: 'button primary', type: 'submit'}, gettext('Claim the prize')),
      h('p', {class: 'error', role: 'alert', hidden: true}),
    );
    form.addEventListener('submit', async (submit) => {
      submit.preventDefault();
      const f = form.elements;
      try {
        await post(`/giveaways/${giveaway.id}/claim/`, {
          shipping: {name: f.name.value, phone: f.phone.value, address: f.address.value, district: f.district.value},
        });
        form.replaceChildren(h('p', {class: 'ok'}, gettext('Claimed: your prize is on its way.')));
      } catch (err) {
        say(form.querySelector('.error'), errorMessage(err));
      }
    });
    return form;
  }

  /** What a winner sees: the claim form while a prize waits for them, else what became of it. */
  function winnerNote(giveaway, winner) {
    if (giveaway.prize && (!winner.status || winner.status === 'pending')) return claimForm(giveaway);
    const text = {
      claimed: gettext('You won! Your prize is on its way.'),
      forfeited: gettext('You won, but the prize was not claimed in time.'),
    }[winner.status] || gettext('You won! Congratulations.');
    return h('p', {class: 'ok', 'data-testid': 'giveaway-won'}, text);
  }

  function card(giveaway) {
    const open = giveaway.status === 'open';
    const winners = giveaway.winners || [];
    const mine = you.user_id === null ? null : winners.find((w) => (w.user ? w.user.id : w.id) === you.user_id);
    const node = h('article', {class: `giveaway-card ${giveaway.status}`, dataset: {giveaway: giveaway.id}, 'data-testid': 'giveaway'},
      h('h3', {}, giveaway.title),
      open ? h('p', {}, gettext('Draw in'), ' ', countdown(giveaway)) : null,
      open && giveaway.keyword ? h('p', {class: 'hint'}, fmt(gettext('Comment “%(keyword)s” to enter.'), {keyword: giveaway.keyword})) : null,
      h('p', {class: 'commitment'}, gettext('Commitment:'), ' ', h('code', {title: giveaway.commitment}, (giveaway.commitment || '').slice(0, 16), '…')),
    );
    if (open && !host) {
      node.append(entered.has(giveaway.id)
        ? h('p', {class: 'ok', 'data-testid': 'giveaway-entered'}, gettext('You are in the draw.'))
        : h('button', {class: 'button primary', type: 'button', onclick: () => enter(giveaway), 'data-testid': 'giveaway-enter'}, gettext('Enter')));
    }
    if (open && host) {
      node.append(h('button', {class: 'button', type: 'button', onclick: async () => {
        try {
          await post(`/giveaways/${giveaway.id}/cancel/`);
          giveaway.status = 'cancelled';
          render();
        } catch (err) {
          say(errorLine, errorMessage(err));
        }
      }}, gettext('Cancel')));
    }
    if (giveaway.status === 'drawn' || giveaway.status === 'fulfilled') {
      node.append(
        h('p', {}, gettext('Winners:')),
        h('ul', {class: 'winners', 'data-testid': 'giveaway-winners'},
          winners.length ? winners.map((w) => h('li', {}, (w.user || w).display_name)) : h('li', {}, gettext('Nobody entered.'))),
        h('a', {href: `/giveaways/${giveaway.id}/verify/`, target: '_blank', rel: 'noopener', 'data-testid': 'giveaway-verify'}, gettext('Verify the draw')),
      );
      if (mine && !host) node.append(winnerNote(giveaway, mine));
    }
    if (giveaway.status === 'cancelled') node.append(h('p', {class: 'hint'}, gettext('Cancelled.')));
    return node;
  }

  function render() {
    const shown = [...giveaways.values()].sort((a, b) => b.id - a.id).slice(0, SHOWN);
    show(panel, shown.length > 0);
    box.replaceChildren(...shown.map(card));
  }

  everyTick(() => {
    for (const node of box.querySelectorAll('[data-closes-at]')) {
      const left = new Date(node.dataset.closesAt) - Date.now();
      setText(node, left > 0 ? clock(left) : gettext('drawing…'));
    }
  });

  if (host) {
    const form = $('#giveaway-form');
    form.addEventListener('submit', async (submit) => {
      submit.preventDefault();
      const f = form.elements;
      const body = {title: f.title.value.trim(), winners: Number(f.winners.value), duration_s: Number(f.duration_s.value)};
      if (f.keyword.value.trim()) body.keyword = f.keyword.value.trim();
      if (f.prize_sku.value) body.prize_sku = Number(f.prize_sku.value);
      if (f.followers_only.checked) body.followers_only = true;
      say(errorLine, '');
      try {
        const created = await post(`/rooms/${roomId}/giveaways/`, body);
        giveaways.set(created.id, {winners_count: body.winners, title: body.title, ...created});
        render();
      } catch (err) {
        say(errorLine, err instanceof ApiError && err.status === 404 ? gettext('Giveaways are not available on this server.') : errorMessage(err));
      }
    });
  }

  return {
    events: {
      'room.snapshot': (event) => {
        you = event.data.you;
        giveaways.clear();
        for (const giveaway of event.data.giveaways || []) giveaways.set(giveaway.id, giveaway);
        render();
      },
      // Private: the viewer's comment was the keyword and entered them.
      'giveaway.entered': (event) => {
        entered.add(event.data.giveaway);
        render();
      },
      'giveaway.started': (event) => {
        giveaways.set(event.data.giveaway.id, event.data.giveaway);
        render();
      },
      'giveaway.drawn': (event) => {
        const {giveaway: id, winners, seed} = event.data;
        const giveaway = giveaways.get(id) || {id, title: gettext('Giveaway'), commitment: ''};
        giveaways.set(id, {...giveaway, status: 'drawn', winners, seed});
        render();
      },
    },
  };
}
