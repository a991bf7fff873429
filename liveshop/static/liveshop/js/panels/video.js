// The video: an HTML5 player on the room's playback_url (HLS plays natively on the
// phones most viewers use), or the poster while there is none or the show is not live.

import {$, show} from '../lib/dom.js';
import {gettext} from '../lib/format.js';

export function showVideo(room) {
  const video = $('#video');
  const poster = $('#poster');
  const url = room.status === 'live' ? room.playback_url : '';
  if (url) {
    if (video.getAttribute('src') !== url) {
      video.src = url;
      video.play().catch(() => {}); // autoplay may wait for a tap
    }
    show(video);
    show(poster, false);
    return;
  }
  video.removeAttribute('src');
  show(video, false);
  show(poster);
  $('#poster-text').textContent = {
    scheduled: gettext('The video starts when the host goes on air.'),
    live: gettext('Live now: the host is on air without video. Comments and the shelf are open.'),
    ended: gettext('The show has ended.'),
    suspended: gettext('The show is suspended.'),
  }[room.status] || '';
}
