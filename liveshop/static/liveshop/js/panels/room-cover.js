// The show's cover image on the studio page: shown on the front page's cards. Upload
// (POST /rooms/{id}/cover/, multipart `image`, cropped to 16:9) or remove it
// (DELETE /rooms/{id}/cover/).

import {del, get, upload} from '../lib/api.js';
import {$, say, show} from '../lib/dom.js';
import {errorMessage, gettext} from '../lib/format.js';
import {coverImage} from '../lib/photos.js';

export function mountRoomCover({roomId}) {
  const preview = $('#cover-preview');
  const form = $('#cover-form');
  const remove = $('#cover-remove');
  const errorLine = $('#cover-error');
  const status = $('#cover-status');
  let title = '';

  function render(room) {
    title = room.title;
    preview.replaceChildren(coverImage(room.cover, room.title, {width: 320}) || gettext('No cover yet.'));
    show(remove, Boolean(room.cover));
  }

  async function act(promise, busyText) {
    say(errorLine, '');
    say(status, busyText);
    try {
      const room = await promise;
      render(room || {title, cover: null});
      say(status, '');
    } catch (err) {
      say(status, '');
      say(errorLine, errorMessage(err));
    }
  }

  form.addEventListener('submit', (submit) => {
    submit.preventDefault();
    const file = form.elements.image.files[0];
    if (!file) return;
    act(upload(`/rooms/${roomId}/cover/`, 'image', file), gettext('Uploading…')).then(() => form.reset());
  });
  remove.addEventListener('click', () => act(del(`/rooms/${roomId}/cover/`), ''));
  get(`/rooms/${roomId}/`).then(render, (err) => say(errorLine, errorMessage(err)));
}
