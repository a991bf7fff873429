// The show's moments in the comment stream, as live-shopping apps show them: someone
// bought (order.placed), sent a gift (gift.sent), a giveaway opened or was drawn, people
// joined (viewers.joined: a few names a second at most, already a sample). Thinned here as
// the server thins comments: at most a few every couple of seconds (the ticker and the
// gift banners show every sale and gift).

import {$, h} from '../lib/dom.js';
import {fmt, gettext, inPageLanguage} from '../lib/format.js';
import {orderPlacedText} from './ticker.js';

const WINDOW_MS = 2000;
const PER_WINDOW = 3;

/**
 * Who joined, from a `viewers` event's data: "Ana joined", "Ana, Bo joined", "Ana, Bo, Cy
 * and 5 more joined"; '' when nobody signed in joined.
 */
export function joinedText({joined, joined_more: more}) {
  const names = (joined || []).map((user) => user.display_name);
  if (!names.length) return '';
  if (more) return fmt(gettext('%(names)s and %(n)s more joined'), {names: names.join(gettext(', ')), n: more});
  if (names.length === 1) return fmt(gettext('%(name)s joined'), {name: names[0]});
  return fmt(gettext('%(names)s joined'), {names: names.join(gettext(', '))});
}

export function mountMoments() {
  const list = $('#comments');
  let windowStart = 0;
  let inWindow = 0;

  const add = (kind, icon, text) => {
    const now = Date.now();
    if (now - windowStart > WINDOW_MS) {
      windowStart = now;
      inWindow = 0;
    }
    if (inWindow >= PER_WINDOW) return;
    inWindow += 1;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(h('li', {class: `moment moment-${kind}`, 'data-testid': 'moment'}, icon, ' ', text));
    if (atBottom) list.scrollTop = list.scrollHeight;
  };

  return {
    events: {
      'order.placed': (event) => add('order', '🛒', orderPlacedText(event.data)),
      'gift.sent': (event) => {
        const {user, gift, quantity} = event.data;
        add('gift', '🎁', fmt(gettext('%(name)s sent %(gift)s ×%(n)s'), {name: user.display_name, gift: inPageLanguage(gift, 'name'), n: quantity}));
      },
      'giveaway.started': (event) => {
        const {title, keyword} = event.data.giveaway;
        add('giveaway', '🎉', keyword
          ? fmt(gettext('Giveaway “%(title)s”: comment “%(keyword)s” to enter.'), {title, keyword})
          : fmt(gettext('Giveaway “%(title)s” is open.'), {title}));
      },
      'giveaway.drawn': (event) => {
        const names = (event.data.winners || []).map((w) => w.display_name).join(gettext(', '));
        add('giveaway', '🎉', names ? fmt(gettext('Giveaway drawn: %(names)s won.'), {names}) : gettext('Giveaway drawn: nobody entered.'));
      },
      viewers: (event) => {
        const text = joinedText(event.data);
        if (text) add('join', '👋', text);
      },
    },
  };
}
