// The host's moderation (CONTRACT.md, "Moderation"), as a menu on each comment:
//   DELETE /comments/{id}/, POST /rooms/{id}/mutes/ {user, duration_s},
//   POST /rooms/{id}/bans/ {user}, POST /rooms/{id}/moderators/ {user}
// and the moderators appointed from here, each removable with
//   DELETE /rooms/{id}/moderators/{user}/.

import {del, post} from '../lib/api.js';
import {$, h, say} from '../lib/dom.js';
import {errorMessage, fmt, gettext} from '../lib/format.js';

const MUTE_S = 300;

export function moderationActions({roomId}) {
  const statusLine = $('#moderation-status');
  const moderators = $('#moderators');

  /** Await the call and say how it went; true when it worked. */
  async function act(promise, done) {
    try {
      await promise;
      say(statusLine, done);
      return true;
    } catch (err) {
      say(statusLine, errorMessage(err));
      return false;
    }
  }

  function addModerator(user) {
    if (moderators.querySelector(`[data-user="${user.id}"]`)) return;
    const row = h('li', {dataset: {user: user.id}}, h('span', {}, user.display_name), ' ',
      h('button', {class: 'link danger', type: 'button', onclick: () =>
        act(del(`/rooms/${roomId}/moderators/${user.id}/`), fmt(gettext('%(name)s is no longer a moderator.'), {name: user.display_name}))
          .then((ok) => ok && row.remove())}, gettext('Remove')));
    moderators.append(row);
  }

  /** The menu of one comment (comments.js calls it for every comment not the host's). */
  function menu(comment) {
    const user = comment.user;
    const name = user.display_name;
    const item = (label, testid, run) => h('button', {type: 'button', class: 'link', 'data-testid': testid, onclick: run}, label);
    return h('details', {class: 'menu'},
      h('summary', {'aria-label': gettext('Moderate')}, '⋯'),
      h('div', {class: 'menu-items'},
        item(gettext('Delete'), 'delete-comment', () =>
          act(del(`/comments/${comment.id}/`), gettext('Comment deleted.'))),
        item(gettext('Mute 5 min'), 'mute-user', () =>
          act(post(`/rooms/${roomId}/mutes/`, {user: user.id, duration_s: MUTE_S}), fmt(gettext('%(name)s is muted for 5 minutes.'), {name}))),
        item(gettext('Ban'), 'ban-user', () => {
          if (!confirm(fmt(gettext('Ban %(name)s from this room?'), {name}))) return;
          act(post(`/rooms/${roomId}/bans/`, {user: user.id}), fmt(gettext('%(name)s is banned.'), {name}));
        }),
        user.role === 'moderator' ? null : item(gettext('Make moderator'), 'make-moderator', () =>
          act(post(`/rooms/${roomId}/moderators/`, {user: user.id}), fmt(gettext('%(name)s is now a moderator.'), {name}))
            .then((ok) => ok && addModerator(user))),
      ),
    );
  }

  return {menu};
}
