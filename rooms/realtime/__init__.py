"""The real-time path of a room: how events get a `seq`, travel between processes and
reach each socket. `rooms.broadcast` is its public face; the consumer is in
`rooms.consumers`.

- `events`: one event is encoded to JSON once, where it is published; every later step
  moves the same text.
- `backend`: where `seq`, the replay history, presence and counters live, and how events
  travel between processes: Redis (`redis_backend`) or, in the embedded default, the
  database (`db_backend`).
- `hub`: per web process, one subscription per room it serves and the fanout to its
  local sockets (coalescing, thinning, slow sockets).
"""
