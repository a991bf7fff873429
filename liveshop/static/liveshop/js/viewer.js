// The viewer page (/rooms/{id}/): the video, comments, likes, the shelf and buying, the
// ticker, gifts and giveaways, each a panel fed by the room socket.

import {$, pageConfig} from './lib/dom.js';
import {districtName, fmt, gettext, inPageLanguage} from './lib/format.js';
import {roomConnection} from './lib/room-page.js';
import {mountCheckout} from './panels/checkout.js';
import {mountFollow} from './panels/follow.js';
import {mountComments} from './panels/comments.js';
import {mountGifts} from './panels/gifts.js';
import {mountGiveaways} from './panels/giveaway.js';
import {mountLikes} from './panels/likes.js';
import {mountMoments} from './panels/moments.js';
import {reportActions} from './panels/report.js';
import {mountShelf} from './panels/shelf.js';
import {mountTicker} from './panels/ticker.js';
import {mountVideo} from './panels/video.js';

const config = pageConfig();
const roomId = config.room;
const checkout = mountCheckout({roomId});
const follow = mountFollow({config, errorLine: $('#follow-error')});
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
    video.setRoom(data);
    follow.setHost(data.host);
  },
});

video = room.use(mountVideo());
shelf = room.use(mountShelf({onBuy: (item, state) => checkout.open(item, state)}));
room.use(mountComments({socket: room.socket, config, actions: reportActions({config})}));
room.use(mountMoments());
room.use(mountLikes({socket: room.socket}));
room.use(mountTicker());
room.use(mountGiveaways({roomId, config}));

// Gifts only where the server has them (a 404 from GET /gifts/ leaves the panel hidden);
// the socket connects either way, once every panel listens.
mountGifts({roomId, config})
  .then((gifts) => room.use(gifts))
  .catch((err) => console.warn('gifts are unavailable', err))
  .finally(() => room.connect());
