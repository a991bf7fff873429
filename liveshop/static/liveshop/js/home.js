// The front page: rooms live now and coming up (GET /rooms/?status=...), by the host's
// district, and the latest shows to watch again (GET /replays/).

import {get, getAll} from './lib/api.js';
import {$, h, pageConfig, say, show} from './lib/dom.js';
import {dateTime, districtName, errorMessage, fmt, gettext, inPageLanguage, ngettext, videoTime} from './lib/format.js';
import {coverImage} from './lib/photos.js';

const config = pageConfig();

function roomMeta(room) {
  if (room.replay) {
    return h('span', {class: 'room-meta'}, '▶ ', fmt(gettext('Replay · %(duration)s'), {duration: videoTime(room.replay.duration_s)}));
  }
  if (room.status === 'live') {
    return h('span', {class: 'room-meta'}, h('span', {class: 'dot live'}),
      fmt(ngettext('%(n)s watching', '%(n)s watching', room.viewers_now), {n: room.viewers_now}));
  }
  return h('span', {class: 'room-meta'}, room.scheduled_start ? dateTime(room.scheduled_start) : gettext('Soon'));
}

function roomCard(room) {
  const mine = config.user && room.host.user.id === config.user.id;
  return h('li', {class: `room-card${room.cover ? ' has-cover' : ''}`, dataset: {room: room.id}},
    h('a', {href: room.replay ? `/rooms/${room.id}/replay/` : `/rooms/${room.id}/`, class: 'room-link'},
      coverImage(room.cover, inPageLanguage(room, 'title')),
      h('span', {class: 'room-title'}, inPageLanguage(room, 'title')),
      h('span', {class: 'room-host'}, room.host.user.display_name),
      roomMeta(room),
    ),
    mine ? h('a', {class: 'button small', href: `/studio/rooms/${room.id}/`}, gettext('Studio')) : null,
  );
}

function byDistrict(container, empty, rooms) {
  const districts = new Map();
  for (const room of rooms) {
    const district = room.host.district || gettext('Elsewhere');
    if (!districts.has(district)) districts.set(district, []);
    districts.get(district).push(room);
  }
  container.replaceChildren(...[...districts.keys()].sort().map((district) =>
    h('section', {class: 'district', 'data-district': district},
      h('h3', {}, districtName(district)),
      h('ul', {class: 'room-cards'}, districts.get(district).map(roomCard)))));
  container.removeAttribute('aria-busy');
  show(empty, rooms.length === 0);
}

async function load() {
  try {
    const [live, upcoming] = await Promise.all([getAll('/rooms/?status=live', 5), getAll('/rooms/?status=scheduled', 5)]);
    upcoming.sort((a, b) => String(a.scheduled_start || '9999').localeCompare(String(b.scheduled_start || '9999')));
    byDistrict($('#live-rooms'), $('#live-empty'), live);
    byDistrict($('#upcoming-rooms'), $('#upcoming-empty'), upcoming);
  } catch (err) {
    say($('#home-error'), errorMessage(err));
  }
}

/** The live and coming shows of the hosts you follow, live first. */
async function loadFollowing() {
  if (!config.user) return;
  const rooms = (await getAll('/rooms/?following=true', 2)).filter((room) => room.status === 'live' || room.status === 'scheduled');
  rooms.sort((a, b) => (a.status === 'live' ? 0 : 1) - (b.status === 'live' ? 0 : 1)
    || String(a.scheduled_start || '').localeCompare(String(b.scheduled_start || '')));
  $('#following-rooms').replaceChildren(...rooms.map(roomCard));
  show($('#following-section'), rooms.length > 0);
}

/** The latest shows with a replay (a page of them), newest first. */
async function loadReplays() {
  const page = await get('/replays/');
  $('#replay-rooms').replaceChildren(...page.results.map(roomCard));
  show($('#replays-section'), page.results.length > 0);
}

function refresh() {
  load();
  loadReplays().catch((err) => console.warn('replays unavailable', err));
  loadFollowing().catch((err) => console.warn('following unavailable', err));
}

refresh();
setInterval(refresh, 30000);
