// The room's video: the HLS player while the host's stream is on air, the poster with the
// show's state otherwise. `video.on_air` and `video.off_air` switch it without a reload;
// the player keeps retrying on its own while the stream is meant to be there.
// preview (the host console) plays whatever reaches the ingest server, live or not yet.

import {$, say, show} from '../lib/dom.js';
import {gettext} from '../lib/format.js';
import {createPlayer} from '../lib/player.js';

const POSTER_TEXT = {
  scheduled: gettext('The video starts when the host goes on air.'),
  off_air: gettext("Live now, but the host's video is off. It comes back here as soon as they stream again."),
  ended: gettext('The show has ended.'),
  suspended: gettext('The show is suspended.'),
};
const PREVIEW_TEXT = gettext('No stream is reaching the server. Start streaming with the settings below.');
const STATUS_TEXT = {
  loading: gettext('Connecting to the video…'),
  error: gettext('The video is having trouble. Trying again…'),
  unsupported: gettext('This browser cannot play the video.'),
};

/** The URL to play for the room as it stands, or '' for the poster. */
function playbackUrl(room, {preview}) {
  const video = room.video || {};
  const url = video.playback_url || room.playback_url || '';
  if (!url || room.status === 'ended' || room.status === 'suspended') return '';
  if (!preview && room.status !== 'live') return '';
  // A URL the host typed (no ingest server): nothing says when it is on air, so try it.
  if (video.source === 'external') return url;
  return video.state === 'on_air' ? url : '';
}

export function mountVideo({preview = false, onLatency, onVideo} = {}) {
  const video = $('#video');
  const status = $('#video-status');
  let room = null;

  const render = () => {
    const on = player.state !== 'idle';
    show(video, on);
    show($('#poster'), !on);
    say(status, STATUS_TEXT[player.state] || '');
    if (!on && room) {
      const key = room.status === 'live' ? 'off_air' : room.status;
      $('#poster-text').textContent = preview && key !== 'ended' ? PREVIEW_TEXT : POSTER_TEXT[key] || '';
    }
  };
  const player = createPlayer(video, {onState: render, onLatency});
  // A phone's full-screen stage crops a portrait stream to fill it but shows a landscape
  // one whole (app.css reads data-shape).
  video.addEventListener('loadedmetadata', () => {
    video.dataset.shape = video.videoWidth >= video.videoHeight ? 'landscape' : 'portrait';
  });

  const update = ({restart = false} = {}) => {
    const url = room ? playbackUrl(room, {preview}) : '';
    if (url) player.play(url, {restart});
    else player.stop();
    render();
    if (onVideo && room) onVideo(room.video || {});
  };

  return {
    setRoom(next) {
      room = next;
      update();
    },
    events: {
      'video.on_air': (event) => {
        if (!room) return;
        room.video = {...room.video, state: 'on_air', playback_url: event.data.playback_url, on_air_since: event.ts};
        update({restart: true});
      },
      // The host changed the playback URL (a room streamed elsewhere).
      'video.updated': (event) => {
        if (!room) return;
        room.video = event.data;
        room.playback_url = event.data.playback_url;
        update({restart: true});
      },
      'video.off_air': () => {
        if (!room) return;
        room.video = {...room.video, state: 'off_air', on_air_since: null};
        update();
      },
    },
  };
}
