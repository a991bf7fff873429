// A replay's comments, appearing as the video reaches them. They are fetched a minute of
// video at a time (GET /rooms/{id}/replay/comments/?from_s=&to_s=), the minute playing
// and the ones on either side, so a show with a hundred thousand comments costs a few
// small requests, wherever the viewer seeks.

import {getAll} from '../lib/api.js';
import {$, h} from '../lib/dom.js';
import {videoTime} from '../lib/format.js';

const WINDOW_S = 60;
const SHOWN = 50;
const RETRY_MS = 5000;

export function mountReplayComments({roomId, onError}) {
  const list = $('#comments');
  const loaded = new Map(); // minute -> its comments
  const loading = new Set();
  const failedAt = new Map(); // minute -> when its fetch failed
  let shown = '';
  let now = 0;

  function load(minute) {
    if (minute < 0 || loaded.has(minute) || loading.has(minute)) return;
    if (Date.now() - (failedAt.get(minute) || 0) < RETRY_MS) return;
    loading.add(minute);
    const from = minute * WINDOW_S;
    getAll(`/rooms/${roomId}/replay/comments/?from_s=${from}&to_s=${from + WINDOW_S}&page_size=100`)
      .then((comments) => {
        loaded.set(minute, comments);
        failedAt.delete(minute);
        render();
      })
      .catch((err) => {
        failedAt.set(minute, Date.now());
        onError(err);
      })
      .finally(() => loading.delete(minute));
  }

  /** The last comments sent before `now` (a minute's bounds are both inclusive: dedupe). */
  function visible() {
    const minute = Math.floor(now / WINDOW_S);
    const byId = new Map();
    for (const m of [minute - 1, minute]) {
      for (const comment of loaded.get(m) || []) if (comment.at_s <= now) byId.set(comment.id, comment);
    }
    return [...byId.values()].sort((a, b) => a.at_s - b.at_s || a.id - b.id).slice(-SHOWN);
  }

  function item(comment) {
    return h('li', {class: 'comment', dataset: {id: comment.id, at: comment.at_s}},
      h('span', {class: 'author'}, comment.user.display_name),
      h('span', {class: 'text'}, comment.text),
      h('time', {}, videoTime(comment.at_s)));
  }

  function render() {
    const comments = visible();
    const key = comments.map((comment) => comment.id).join(',');
    if (key === shown) return;
    shown = key;
    list.replaceChildren(...comments.map(item));
    list.scrollTop = list.scrollHeight;
  }

  return {
    /** The video is at `seconds` (playing, or just sought there). */
    at(seconds) {
      now = seconds;
      const minute = Math.floor(seconds / WINDOW_S);
      for (const m of [minute - 1, minute, minute + 1]) load(m);
      render();
    },
  };
}
