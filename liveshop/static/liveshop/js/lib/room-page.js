// What the viewer page and the host console share: the socket, the dispatch of room
// events to the panels that asked for them, and the room's header (status, viewers,
// connection state).

import {$, say} from './dom.js';
import {fmt, gettext, roomStatusLabel} from './format.js';
import {RoomSocket} from './room-socket.js';

/**
 * The room's socket (not yet connected) and its dispatch: `use(panel)` hands the panel's
 * `events` handlers every event of their type; `connect()` once every panel is in.
 * onRoom(room, snapshotData or null) hears the room on every snapshot and status change.
 */
export function roomConnection(roomId, {onRoom} = {}) {
  const connection = $('#connection');
  const handlers = new Map();
  const on = (type, handler) => {
    if (!handlers.has(type)) handlers.set(type, []);
    handlers.get(type).push(handler);
  };
  const use = (panel) => {
    for (const [type, handler] of Object.entries(panel.events || {})) on(type, handler);
    return panel;
  };

  let room = null;
  const setStatus = (status) => {
    const badge = $('#room-status');
    badge.textContent = roomStatusLabel(status);
    badge.className = `badge status-${status}`;
    badge.dataset.status = status;
  };
  on('room.snapshot', (event) => {
    room = event.data.room;
    setStatus(room.status);
    $('#viewers-now').textContent = String(event.data.viewers.now);
    if (onRoom) onRoom(room, event.data);
  });
  on('viewers', (event) => {
    $('#viewers-now').textContent = String(event.data.now);
  });
  on('room.status', (event) => {
    if (room) room.status = event.data.status;
    setStatus(event.data.status);
    if (onRoom && room) onRoom(room, null);
  });

  const socket = new RoomSocket(roomId, {
    onEvent: (event) => {
      for (const handler of handlers.get(event.type) || []) handler(event);
    },
    onState: (state, detail) => {
      connection.dataset.state = state;
      if (state === 'open' || state === 'connecting') say(connection, '');
      else if (state === 'reconnecting') say(connection, fmt(gettext('Connection lost. Reconnecting in %(s)s s…'), {s: detail}));
      else if (state === 'closed') say(connection, gettext('The show has ended. Thank you for watching!'));
      else if (state === 'refused') {
        say(connection, detail === 4403 ? gettext('You cannot join this room.') : gettext('This room is not available.'));
      }
    },
  });
  return {socket, on, use, connect: () => socket.connect()};
}
