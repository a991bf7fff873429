// The comment stream and the comment box. Events: room.snapshot (recent_comments),
// comment.new, comment.deleted; replies to this socket: comment.ack, error (with the
// nonce of the comment it refuses), moderation.muted. Sending: comment.send {text, nonce}.
// With `actions` (the host console), each comment gets a menu of moderation actions.

import {$, h, randomId, say, show} from '../lib/dom.js';
import {errorMessage, fmt, gettext, timeOfDay} from '../lib/format.js';

const MAX_SHOWN = 200;
const ROLE_LABELS = () => ({host: gettext('Host'), moderator: gettext('Moderator')});

export function mountComments({socket, config, actions = null}) {
  const list = $('#comments');
  const form = $('#comment-form');
  const input = $('#comment-text');
  const errorLine = $('#comment-error');
  const pending = new Map(); // nonce -> text, until ack or error
  let you = {user_id: null, role: 'anonymous', muted_until: null};

  function render(comment) {
    const role = comment.user.role;
    const label = ROLE_LABELS()[role];
    const mine = you.user_id !== null && comment.user.id === you.user_id;
    const item = h(
      'li',
      {class: `comment${mine ? ' mine' : ''}${role ? ` role-${role}` : ''}`, dataset: {id: comment.id, user: comment.user.id}},
      h('span', {class: 'author'}, comment.user.display_name, label ? h('em', {class: 'role'}, label) : null),
      h('span', {class: 'text'}, comment.text),
      h('time', {datetime: comment.ts}, comment.ts ? timeOfDay(comment.ts) : ''),
    );
    if (actions && !mine && comment.user.id !== null) item.append(actions.menu(comment));
    return item;
  }

  function add(comment) {
    if (list.querySelector(`[data-id="${comment.id}"]`)) return;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(render(comment));
    while (list.children.length > MAX_SHOWN) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function mutedMessage(until) {
    if (!until) return errorMessage({code: 'muted'});
    return fmt(gettext('You are muted in this room until %(time)s.'), {time: timeOfDay(until)});
  }

  function setYou(next) {
    you = next;
    const signedIn = you.user_id !== null;
    show(form, signedIn);
    show($('#comment-signin'), !signedIn);
    if (you.muted_until && new Date(you.muted_until) > new Date()) say(errorLine, mutedMessage(you.muted_until));
  }

  // Who we are is known from the page before the socket's snapshot confirms it.
  setYou({user_id: config.user ? config.user.id : null, role: config.user ? 'viewer' : 'anonymous', muted_until: null});

  form.addEventListener('submit', (submit) => {
    submit.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const nonce = randomId();
    if (!socket.send({type: 'comment.send', text, nonce})) {
      say(errorLine, gettext('Not connected: your comment was not sent.'));
      return;
    }
    pending.set(nonce, text);
    input.value = '';
    say(errorLine, '');
  });

  return {
    setYou,
    events: {
      'room.snapshot': (event) => {
        setYou(event.data.you);
        list.replaceChildren();
        for (const comment of event.data.recent_comments) add(comment);
        list.scrollTop = list.scrollHeight;
      },
      'comment.new': (event) => add(event.data),
      'comment.deleted': (event) => {
        const node = list.querySelector(`[data-id="${event.data.id}"]`);
        if (node) node.remove();
      },
      'comment.ack': (event) => pending.delete(event.data.nonce),
      'moderation.muted': (event) => {
        you = {...you, muted_until: event.data.until || event.data.muted_until || null};
        say(errorLine, mutedMessage(you.muted_until));
      },
      error: (event) => {
        const {nonce, code} = event.data;
        const text = nonce !== undefined ? pending.get(nonce) : undefined;
        pending.delete(nonce);
        if (text !== undefined && !input.value) input.value = text; // give the words back
        say(errorLine, code === 'muted' ? mutedMessage(you.muted_until) : errorMessage(event.data));
      },
    },
  };
}
