// Follow the room's host (GET /hosts/{id}/ says whether you do; POST or DELETE
// /hosts/{id}/follow/). Followers hear when the host goes live, and may enter
// followers-only giveaways.

import {del, get, post} from '../lib/api.js';
import {$, say, show} from '../lib/dom.js';
import {errorMessage, gettext} from '../lib/format.js';

export function mountFollow({config, errorLine}) {
  const button = $('#follow-button');
  let host = null;
  let following = false;

  const render = () => {
    button.textContent = following ? gettext('Following') : gettext('+ Follow');
    button.classList.toggle('primary', !following);
    button.setAttribute('aria-pressed', String(following));
  };

  button.addEventListener('click', async () => {
    if (!config.user) {
      location.href = config.login_url;
      return;
    }
    button.disabled = true;
    try {
      if (following) await del(`/hosts/${host.id}/follow/`);
      else await post(`/hosts/${host.id}/follow/`);
      following = !following;
      render();
    } catch (err) {
      say(errorLine, errorMessage(err));
    } finally {
      button.disabled = false;
    }
  });

  return {
    /** The room's host (`room.host`): shows the button unless it is you. */
    async setHost(next) {
      if (host && host.id === next.id) return;
      host = next;
      const mine = config.user && next.user.id === config.user.id;
      show(button, !mine);
      if (mine) return;
      render();
      if (!config.user) return;
      try {
        following = Boolean((await get(`/hosts/${next.id}/`)).following);
        render();
      } catch (err) {
        console.warn('follow state unavailable', err);
      }
    },
  };
}
