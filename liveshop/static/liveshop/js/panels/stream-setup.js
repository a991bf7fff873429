// The host console's streaming setup: where to point OBS (the ingest server and the
// stream key, hidden until asked), a new key, the playback URL for a room streamed
// elsewhere, and whether the host's stream is reaching the server.

import {get, patch, post} from '../lib/api.js';
import {$, say, show} from '../lib/dom.js';
import {errorMessage, fmt, gettext, timeOfDay} from '../lib/format.js';

export function mountStreamSetup({roomId, errorLine}) {
  const key = $('#stream-key');
  const state = $('#stream-state');
  let video = {};
  let latency = null;

  const showIngest = (ingest) => {
    const managed = Boolean(ingest && ingest.url);
    show($('#ingest'), managed);
    show($('#ingest-hint'), managed);
    show($('#playback-form'), !managed);
    $('#ingest-url').textContent = managed ? ingest.url : '';
    key.textContent = managed ? ingest.stream_key : '';
  };
  const revealKey = (visible) => {
    show(key, visible);
    show($('#stream-key-mask'), !visible);
    $('#stream-key-show').textContent = visible ? gettext('Hide') : gettext('Show');
  };
  const render = () => {
    state.dataset.state = video.state || 'off_air';
    if (video.source === 'external') {
      state.textContent = gettext('Video from the playback URL below.');
    } else if (video.state === 'on_air') {
      state.textContent = fmt(gettext('Your stream is reaching the server (since %(time)s).'), {
        time: timeOfDay(video.on_air_since),
      }) + (latency === null ? '' : ' ' + fmt(gettext('The preview plays %(s)s s behind the live edge.'), {s: latency.toFixed(1)}));
    } else {
      state.textContent = gettext('No stream is reaching the server.');
    }
  };

  get(`/rooms/${roomId}/`).then((details) => {
    showIngest(details.ingest);
    $('#playback-form').elements.playback_url.value = details.playback_url || '';
  }).catch((err) => say(errorLine, errorMessage(err)));

  $('#stream-key-show').addEventListener('click', () => revealKey(key.hidden));
  for (const button of document.querySelectorAll('.stream .copy')) {
    button.addEventListener('click', () => {
      navigator.clipboard.writeText($(`#${button.dataset.copy}`).textContent)
        .then(() => say(errorLine, ''), () => revealKey(true)); // no clipboard (plain http): show it to copy by hand
    });
  }
  $('#stream-key-rotate').addEventListener('click', async () => {
    if (!confirm(gettext('Make a new stream key? The old one stops working, and a stream using it is cut off.'))) return;
    try {
      const answer = await post(`/rooms/${roomId}/stream-key/`);
      showIngest({url: answer.ingest_url, stream_key: answer.stream_key});
      revealKey(true);
      say(errorLine, '');
    } catch (err) {
      say(errorLine, errorMessage(err));
    }
  });
  $('#playback-form').addEventListener('submit', async (submit) => {
    submit.preventDefault();
    try {
      await patch(`/rooms/${roomId}/`, {playback_url: submit.target.elements.playback_url.value.trim()});
      say(errorLine, '');
    } catch (err) {
      say(errorLine, errorMessage(err));
    }
  });

  return {
    setVideo(next) {
      if (next.state !== 'on_air') latency = null;
      video = next;
      render();
    },
    setLatency(seconds) {
      latency = seconds;
      render();
    },
  };
}
