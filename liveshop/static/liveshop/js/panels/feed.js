// The host console's live feed: gifts (gift.sent), paid orders (order.placed), flash
// sales ending (flash.ended) and who joined (viewers.joined) as they happen, newest first,
// with the show's running totals of gifts and orders. Joins come up to once a second: only
// the last few of them stay, so they never push the sales out of the feed.

import {$, h} from '../lib/dom.js';
import {fmt, gettext, inPageLanguage, timeOfDay} from '../lib/format.js';
import {joinedText} from './moments.js';
import {orderPlacedText} from './ticker.js';

const SHOWN = 50;
const SHOWN_JOINS = 10;

export function mountFeed() {
  const list = $('#live-feed');
  const totals = {gifts: 0, coins: 0, orders: 0};

  const add = (kind, icon, text, ts) => {
    list.prepend(h('li', {class: `feed-${kind}`, 'data-kind': kind},
      h('time', {datetime: ts}, timeOfDay(ts || new Date().toISOString())), ' ', icon, ' ', text));
    while (list.children.length > SHOWN) list.lastElementChild.remove();
    const joins = list.querySelectorAll('.feed-join');
    for (let i = SHOWN_JOINS; i < joins.length; i += 1) joins[i].remove();
    $('#feed-totals').textContent = fmt(gettext('%(orders)s orders · %(gifts)s gifts (%(coins)s coins) since you opened this page'), totals);
  };

  return {
    events: {
      'gift.sent': (event) => {
        const {user, gift, quantity, coins} = event.data;
        totals.gifts += quantity;
        totals.coins += coins || 0;
        add('gift', '🎁', fmt(gettext('%(name)s sent %(gift)s ×%(n)s'), {name: user.display_name, gift: inPageLanguage(gift, 'name'), n: quantity}), event.ts);
      },
      'order.placed': (event) => {
        totals.orders += 1;
        add('order', '🛒', orderPlacedText(event.data), event.ts);
      },
      'flash.ended': (event) => {
        add('flash', '⚡', fmt(gettext('Flash sale ended: %(n)s sold'), {n: event.data.sold}), event.ts);
      },
      viewers: (event) => {
        const text = joinedText(event.data);
        if (text) add('join', '👋', text, event.ts);
      },
    },
  };
}
