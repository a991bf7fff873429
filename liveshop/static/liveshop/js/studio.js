// The host console (/studio/rooms/{id}/): start and end the show, the shelf (feature,
// flash sales, add and remove), comments with moderation, giveaways, moderators and
// live stats.

import {post} from './lib/api.js';
import {$, h, pageConfig, say, show} from './lib/dom.js';
import {errorMessage, gettext, inPageLanguage} from './lib/format.js';
import {roomConnection} from './lib/room-page.js';
import {mountComments} from './panels/comments.js';
import {mountFeed} from './panels/feed.js';
import {mountGiveaways} from './panels/giveaway.js';
import {mountHostShelf} from './panels/host-shelf.js';
import {mountLikes} from './panels/likes.js';
import {mountRedEnvelopes} from './panels/red-envelope.js';
import {moderationActions} from './panels/moderation.js';
import {mountRoomCover} from './panels/room-cover.js';
import {mountStats} from './panels/stats.js';
import {mountStreamSetup} from './panels/stream-setup.js';
import {mountVideo} from './panels/video.js';

const config = pageConfig();
const roomId = config.room;
const errorLine = $('#controls-error');
let hostShelf = null;

function showControls(status) {
  show($('#start-show'), status === 'scheduled');
  show($('#end-show'), status === 'live');
  if (hostShelf) hostShelf.setLive(status === 'live');
}

async function control(action) {
  say(errorLine, '');
  try {
    const room = await post(`/rooms/${roomId}/${action}/`);
    showControls(room.status);
  } catch (err) {
    say(errorLine, errorMessage(err));
  }
}

const streamSetup = mountStreamSetup({roomId, errorLine});
const preview = mountVideo({
  preview: true,
  onVideo: (video) => streamSetup.setVideo(video),
  onLatency: (seconds) => streamSetup.setLatency(seconds),
});

const room = roomConnection(roomId, {
  onRoom: (data) => {
    $('#room-title').textContent = inPageLanguage(data, 'title');
    showControls(data.status);
    preview.setRoom(data);
  },
});
room.use(preview);
room.on('viewers', (event) => {
  $('#viewers-peak').textContent = String(event.data.peak);
});
room.on('room.snapshot', (event) => {
  $('#viewers-peak').textContent = String(event.data.viewers.peak);
});

hostShelf = room.use(mountHostShelf({
  roomId,
  onItems: (items) => {
    const select = $('#giveaway-prize');
    const chosen = select.value;
    select.replaceChildren(h('option', {value: ''}, '–'),
      ...items.map((item) => h('option', {value: item.sku}, `${inPageLanguage(item.product, 'title')} · ${inPageLanguage(item, 'sku_name')}`)));
    select.value = chosen;
  },
}));
room.use(mountFeed());
room.use(mountComments({socket: room.socket, config, actions: moderationActions({roomId})}));
room.use(mountLikes({socket: room.socket}));
room.use(mountGiveaways({roomId, config, host: true}));
room.use(mountRedEnvelopes({roomId, config, host: true}));
room.use(mountStats({roomId}));
mountRoomCover({roomId});

// The preview's link to the streaming setup (further down, on a phone) opens it too.
const openSetup = () => { $('#stream-setup details').open = true; };
$('.setup-link').addEventListener('click', openSetup);
if (window.location.hash === '#stream-setup') openSetup();

$('#start-show').addEventListener('click', () => control('start'));
$('#end-show').addEventListener('click', () => {
  if (confirm(gettext('End the show for everyone? This cannot be undone.'))) control('end');
});

room.connect();
