// The viewer page (/rooms/{id}/): the video, comments, likes, the shelf and buying, the
// ticker, gifts and giveaways, each a panel fed by the room socket. On a phone the video
// fills the screen and the shelf and gifts open as sheets over it (sheets.js).

import {get} from './lib/api.js';
import {$, pageConfig, show} from './lib/dom.js';
import {districtName, fmt, gettext, inPageLanguage} from './lib/format.js';
import {roomConnection} from './lib/room-page.js';
import {mountCheckout} from './panels/checkout.js';
import {mountFollow} from './panels/follow.js';
import {mountComments} from './panels/comments.js';
import {mountGifts} from './panels/gifts.js';
import {mountGiveaways} from './panels/giveaway.js';
import {mountLikes} from './panels/likes.js';
import {mountRedEnvelopes} from './panels/red-envelope.js';
import {mountMoments} from './panels/moments.js';
import {reportActions} from './panels/report.js';
import {mountSheets} from './panels/sheets.js';
import {mountShelf} from './panels/shelf.js';
import {mountTicker} from './panels/ticker.js';
import {mountVideo} from './panels/video.js';

const config = pageConfig();
const roomId = config.room;
const checkout = mountCheckout({roomId});
const follow = mountFollow({config, errorLine: $('#follow-error')});
const sheets = mountSheets();
let shelf = null;
let video = null;

const room = roomConnection(roomId, {
  onRoom: (data) => {
    $('#room-title').textContent = inPageLanguage(data, 'title');
    document.title = `${inPageLanguage(data, 'title')} · liveshop`;
    $('#host-line').textContent = fmt(gettext('%(name)s · %(district)s'), {
      name: data.host.user.display_name,
      district: districtName(data.host.district),
    });
    shelf.setCanBuy(data.status === 'live');
    if (data.status === 'ended') offerReplay();
    video.setRoom(data);
    follow.setHost(data.host);
  },
});

/** An ended show: point to its replay once there is (or soon will be) one. */
let replayOffered = false;
async function offerReplay() {
  if (replayOffered) return;
  replayOffered = true;
  try {
    const replay = await get(`/rooms/${roomId}/replay/`);
    show($('#replay-line'), replay.status === 'ready' || replay.status === 'processing');
  } catch (err) {
    console.warn('replay state unavailable', err);
  }
}

video = room.use(mountVideo());
shelf = room.use(mountShelf({
  onBuy: (item, state) => checkout.open(item, state),
  onFlash: (card) => {
    sheets.open('shelf-panel');
    if (card) card.scrollIntoView({block: 'nearest'});
  },
}));
room.use(mountComments({socket: room.socket, config, actions: reportActions({config})}));
room.use(mountMoments());
room.use(mountLikes({socket: room.socket}));
room.use(mountTicker());
room.use(mountGiveaways({roomId, config}));
room.use(mountRedEnvelopes({roomId, config}));

// On a phone a comment's Report shows when the comment is tapped (app.css), not on every
// comment floating over the video.
$('#comments').addEventListener('click', (click) => {
  const comment = click.target.closest('.comment');
  if (comment && !click.target.closest('.report-menu')) comment.classList.toggle('picked');
});

// A double tap on the video is a like, as in the apps viewers know.
$('.screen').addEventListener('dblclick', () => $('#like-button').click());

// Gifts only where the server has them (a 404 from GET /gifts/ leaves the panel hidden);
// the socket connects either way, once every panel listens.
mountGifts({roomId, config})
  .then((gifts) => {
    room.use(gifts);
    show($('#gifts-open'), true);
  })
  .catch((err) => console.warn('gifts are unavailable', err))
  .finally(() => room.connect());
