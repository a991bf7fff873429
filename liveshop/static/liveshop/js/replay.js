// The replay page (/rooms/{id}/replay/): an ended show's video (GET /rooms/{id}/replay/),
// its comments appearing as the video reaches them, chapters to jump to each product, and
// the shelf to buy from at the shelf's price (POST /orders/ with the ended room, as the
// live page does). `?t=<seconds>` starts the video there (a product page's clip links
// here). While the replay is being made the page says so and looks again now and then.

import {get, getAll} from './lib/api.js';
import {$, pageConfig, say, show} from './lib/dom.js';
import {districtName, errorMessage, fmt, gettext, inPageLanguage, videoTime} from './lib/format.js';
import {createPlayer} from './lib/player.js';
import {mountChapters} from './panels/chapters.js';
import {mountCheckout} from './panels/checkout.js';
import {mountFollow} from './panels/follow.js';
import {mountReplayComments} from './panels/replay-comments.js';
import {mountSheets} from './panels/sheets.js';
import {mountShelf} from './panels/shelf.js';

const STATE_TEXT = {
  processing: gettext('The replay is being prepared… It appears here by itself.'),
  failed: gettext('The replay of this show could not be made.'),
  none: gettext('This show has no replay.'),
};
const PLAYER_TEXT = {
  loading: gettext('Loading the video…'),
  error: gettext('The video is having trouble. Trying again…'),
  unsupported: gettext('This browser cannot play the video.'),
};
const POLL_MS = 5000;

const config = pageConfig();
const roomId = config.room;
const video = $('#video');
const errorLine = $('#replay-error');
const checkout = mountCheckout({roomId});
const follow = mountFollow({config, errorLine: $('#follow-error')});
mountSheets();
const shelf = mountShelf({onBuy: (item, state) => checkout.open(item, state), linkProducts: true});
const comments = mountReplayComments({roomId, onError: (err) => say(errorLine, errorMessage(err))});
const player = createPlayer(video, {
  onState: (state) => {
    show(video, state !== 'idle');
    show($('#poster'), state === 'idle');
    say($('#video-status'), PLAYER_TEXT[state] || '');
  },
});
let chapters = null;

function startAt() {
  const seconds = Number(new URLSearchParams(location.search).get('t'));
  return Number.isFinite(seconds) && seconds > 0 ? seconds : 0;
}

function jump(seconds) {
  video.currentTime = seconds;
  video.play().catch(() => {});
}

/** Everything that follows the video's position: comments, the chapter, the clock. */
function trackPosition(duration) {
  const clock = $('#replay-clock');
  const tick = () => {
    const now = video.currentTime;
    comments.at(now);
    chapters.at(now);
    clock.textContent = `${videoTime(now)} / ${videoTime(duration)}`;
    show(clock, true);
  };
  video.addEventListener('timeupdate', tick);
  video.addEventListener('seeked', tick);
  tick();
}

function showChapterProduct(chapter) {
  // The shelf's "now explaining" card follows the chapter playing.
  shelf.events['item.featured']({data: {item: chapter ? chapter.item : null}});
}

function play(replay) {
  chapters = mountChapters({
    chapters: replay.chapters,
    onJump: (chapter) => jump(chapter.at_s),
    onChapter: showChapterProduct,
  });
  const start = startAt();
  if (start) {
    video.addEventListener('loadedmetadata', () => {
      video.currentTime = Math.min(start, replay.duration_s || start);
    }, {once: true});
  }
  trackPosition(replay.duration_s || 0);
  shelf.setCanBuy(true);
  player.play(replay.playback_url);
}

async function loadReplay() {
  let replay;
  try {
    replay = await get(`/rooms/${roomId}/replay/`);
  } catch (err) {
    say(errorLine, errorMessage(err));
    setTimeout(loadReplay, POLL_MS);
    return;
  }
  say(errorLine, '');
  $('#poster-text').textContent = STATE_TEXT[replay.status] || '';
  document.body.dataset.replay = replay.status;
  if (replay.status === 'ready') play(replay);
  else if (replay.status === 'processing') setTimeout(loadReplay, POLL_MS);
}

async function loadRoom() {
  const [room, items] = await Promise.all([get(`/rooms/${roomId}/`), getAll(`/rooms/${roomId}/items/`)]);
  $('#room-title').textContent = inPageLanguage(room, 'title');
  document.title = `${gettext('Replay')}: ${inPageLanguage(room, 'title')} · liveshop`;
  $('#host-line').textContent = fmt(gettext('%(name)s · %(district)s'), {
    name: room.host.user.display_name,
    district: districtName(room.host.district),
  });
  follow.setHost(room.host);
  shelf.events['items.updated']({data: {items}});
}

loadRoom().catch((err) => say(errorLine, errorMessage(err)));
loadReplay();
