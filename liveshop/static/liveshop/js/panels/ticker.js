// The order ticker: order.placed {buyer (masked), district, title, quantity}, once per
// paid order. The latest few scroll over the video.

import {$, h} from '../lib/dom.js';
import {fmt, gettext} from '../lib/format.js';

const SHOWN = 3;

export function mountTicker() {
  const ticker = $('#ticker');
  return {
    events: {
      'order.placed': (event) => {
        const {buyer, district, title, quantity} = event.data;
        const text = district
          ? fmt(gettext('%(buyer)s from %(district)s bought %(title)s ×%(quantity)s'), {buyer, district, title, quantity})
          : fmt(gettext('%(buyer)s bought %(title)s ×%(quantity)s'), {buyer, title, quantity});
        ticker.prepend(h('p', {class: 'tick'}, '🛒 ', text));
        while (ticker.children.length > SHOWN) ticker.lastElementChild.remove();
      },
    },
  };
}
