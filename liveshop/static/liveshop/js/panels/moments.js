// The show's moments in the comment stream, as live-shopping apps show them: someone
// bought (order.placed), sent a gift (gift.sent), a giveaway opened or was drawn. Thinned
// here as the server thins comments: at most a few every couple of seconds (the ticker
// and the gift banners show every one).

import {$, h} from '../lib/dom.js';
import {fmt, gettext, inPageLanguage} from '../lib/format.js';
import {orderPlacedText} from './ticker.js';

const WINDOW_MS = 2000;
const PER_WINDOW = 3;

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
    },
  };
}
