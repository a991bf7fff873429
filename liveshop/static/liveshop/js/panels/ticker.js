// The order ticker: order.placed {buyer (masked), district, title, quantity}, once per
// paid order. The latest few scroll over the video.

import {$, h} from '../lib/dom.js';
import {districtName, fmt, gettext, inPageLanguage} from '../lib/format.js';

const SHOWN = 3;

/** The words for an order.placed event, shared with the host's live feed. */
export function orderPlacedText(placed) {
  const {buyer, district: where, quantity} = placed;
  const district = where ? districtName(where) : '';
  const title = inPageLanguage(placed, 'title');
  return district
    ? fmt(gettext('%(buyer)s from %(district)s bought %(title)s ×%(quantity)s'), {buyer, district, title, quantity})
    : fmt(gettext('%(buyer)s bought %(title)s ×%(quantity)s'), {buyer, title, quantity});
}

export function mountTicker() {
  const ticker = $('#ticker');
  return {
    events: {
      'order.placed': (event) => {
        ticker.prepend(h('p', {class: 'tick'}, '🛒 ', orderPlacedText(event.data)));
        while (ticker.children.length > SHOWN) ticker.lastElementChild.remove();
      },
    },
  };
}
