// The room WebSocket of docs/CONTRACT.md: one connection, kept open.
//
// The page is authenticated by its session cookie (same origin), so it needs no ticket.
// Every room event carries a `seq`; the socket remembers the last one it handled and,
// when the connection drops, reconnects with `?since=<seq>`: the server replays the
// events missed meanwhile (or sends a fresh `room.snapshot` when the gap is too old),
// so the page never shows a hole. Events already seen (seq not above the last) are
// skipped, so a replay that overlaps is harmless.

const PING_EVERY_MS = 25000;
const FINAL_CODES = new Set([4401, 4403, 4404]);
// Frames sent while (re)connecting wait for the socket, up to this many.
const MAX_WAITING = 20;

export class RoomSocket {
  /**
   * onEvent(event) gets every event (batches opened, in order); onState(state, detail)
   * hears 'connecting', 'open', 'reconnecting' (detail: seconds until the next try),
   * 'closed' (the show ended) and 'refused' (detail: the close code).
   */
  constructor(roomId, {onEvent, onState}) {
    this.roomId = roomId;
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.seq = null;
    this.attempt = 0;
    this.finished = false;
    this.ws = null;
    this.pinger = null;
    this.waiting = [];
    this.refused = false;
  }

  url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const since = this.seq === null ? '' : `?since=${this.seq}`;
    return `${scheme}//${location.host}/ws/rooms/${this.roomId}/${since}`;
  }

  connect() {
    this.onState(this.attempt ? 'reconnecting' : 'connecting', 0);
    const ws = (this.ws = new WebSocket(this.url()));
    ws.onopen = () => {
      this.pinger = setInterval(() => this.send({type: 'ping'}), PING_EVERY_MS);
      for (const frame of this.waiting.splice(0)) ws.send(JSON.stringify(frame));
    };
    ws.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      for (const event of frame.type === 'batch' ? frame.events : [frame]) this.handle(event);
    };
    ws.onclose = (close) => this.closed(close.code);
  }

  handle(event) {
    if (typeof event.seq === 'number') {
      if (event.type === 'room.snapshot') {
        this.seq = event.seq;
        this.attempt = 0;
        this.onState('open');
      } else {
        if (this.seq !== null && event.seq <= this.seq) return; // seen already
        if (this.seq !== null && this.attempt) {
          this.attempt = 0; // a replay after a reconnect
          this.onState('open');
        }
        this.seq = event.seq;
      }
    }
    // A show that is over closes its sockets (a last room.status, or at once after the
    // snapshot of an ended show): that close is the end, not a drop to reconnect from.
    const status = event.type === 'room.status' ? event.data.status
      : event.type === 'room.snapshot' ? event.data.room.status : null;
    if (status === 'ended' || status === 'suspended') this.finished = true;
    try {
      this.onEvent(event);
    } catch (err) {
      console.error('room event handler failed', event.type, err);
    }
  }

  closed(code) {
    clearInterval(this.pinger);
    this.ws = null;
    if (this.finished) {
      this.onState('closed', code);
      return;
    }
    if (FINAL_CODES.has(code)) {
      this.refused = true;
      this.onState('refused', code);
      return;
    }
    // Back off 0.5 s, 1 s, 2 s ... up to 15 s, with jitter so a restarted server is not
    // met by every viewer in the same instant.
    this.attempt += 1;
    const delay = Math.min(15000, 500 * 2 ** (this.attempt - 1)) * (0.75 + Math.random() * 0.5);
    this.onState('reconnecting', Math.ceil(delay / 1000));
    setTimeout(() => this.connect(), delay);
  }

  /**
   * Send a frame, at once or as soon as the socket is (re)connected; false when it will
   * not be sent (the show is over, the room refused us, or too much is waiting already).
   */
  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    if (this.finished || this.refused || frame.type === 'ping' || this.waiting.length >= MAX_WAITING) return false;
    this.waiting.push(frame);
    return true;
  }
}
