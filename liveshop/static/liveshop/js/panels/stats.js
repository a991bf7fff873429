// The host's live stats: GET /rooms/{id}/stats/ every few seconds (CONTRACT.md,
// "Statistics"). A server without the endpoint (404) leaves the panel hidden.
// "Watching" is the room socket's count (`viewers`), the number the header shows, rather
// than the poll's, which is up to a poll old.

import {ApiError, get} from '../lib/api.js';
import {$, h, show} from '../lib/dom.js';
import {gettext, money} from '../lib/format.js';

const EVERY_MS = 5000;

export function mountStats({roomId}) {
  const panel = $('#stats-panel');
  const grid = $('#stats');
  let watching = null; // from the socket
  const fields = () => [
    ['viewers_now', gettext('Watching')],
    ['peak_viewers', gettext('Peak')],
    ['views', gettext('Views')],
    ['unique_viewers', gettext('Unique viewers')],
    ['likes', gettext('Likes')],
    ['comments', gettext('Comments')],
    ['orders', gettext('Orders')],
    ['items_sold', gettext('Items sold')],
    ['gmv', gettext('Sales (paid)'), true],
    ['gmv_pending', gettext('Awaiting payment'), true],
    ['refunds', gettext('Refunds'), true],
    ['gift_coins', gettext('Gift coins')],
  ];

  async function refresh() {
    let stats;
    try {
      stats = await get(`/rooms/${roomId}/stats/`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return false; // not on this server
      return true; // a passing failure: try again later
    }
    // One tile a figure (a <div> may group a <dt> with its <dd>): the grid lays tiles out.
    grid.replaceChildren(...fields().map(([key, label, isMoney]) => h('div', {class: 'stat'},
      h('dt', {}, label),
      h('dd', {'data-stat': key}, isMoney ? money(stats[key], stats.currency)
        : String((key === 'viewers_now' && watching !== null ? watching : stats[key]) ?? '–')),
    )));
    show(panel);
    return true;
  }

  refresh().then((exists) => {
    if (exists) setInterval(refresh, EVERY_MS);
  });

  const setWatching = (now) => {
    watching = now;
    const cell = grid.querySelector('[data-stat="viewers_now"]');
    if (cell) cell.textContent = String(now);
  };
  return {
    events: {
      'room.snapshot': (event) => setWatching(event.data.viewers.now),
      viewers: (event) => setWatching(event.data.now),
    },
  };
}
