// Likes: taps are gathered for a moment and sent as one like.send {count} (1-50); the
// room's total comes back as like.total, at most a few times a second. Every tap floats
// a heart at once, before the server has answered.

import {$, h} from '../lib/dom.js';

const FLUSH_MS = 250;
const MAX_PER_FRAME = 50;

export function mountLikes({socket}) {
  const button = $('#like-button');
  const counter = $('#like-count');
  const hearts = $('#hearts');
  let unsent = 0;
  let timer = null;
  let shown = 0;

  function setTotal(total) {
    // Our own unsent taps are already counted on screen; never count backwards.
    shown = Math.max(total, shown);
    counter.textContent = String(shown);
  }

  function float() {
    if (!hearts) return;
    const heart = h('span', {class: 'float-heart', style: `left:${20 + Math.random() * 60}%`}, '♥');
    heart.addEventListener('animationend', () => heart.remove());
    hearts.append(heart);
  }

  function flush() {
    timer = null;
    while (unsent > 0) {
      const count = Math.min(unsent, MAX_PER_FRAME);
      if (!socket.send({type: 'like.send', count})) break;
      unsent -= count;
    }
  }

  if (button) {
    button.addEventListener('click', () => {
      float();
      button.classList.remove('pop');
      void button.offsetWidth; // restart the animation
      button.classList.add('pop');
      unsent += 1;
      setTotal(shown + 1);
      if (!timer) timer = setTimeout(flush, FLUSH_MS);
    });
  }

  return {
    events: {
      'room.snapshot': (event) => {
        shown = 0;
        setTotal(event.data.likes);
        if (button) button.disabled = event.data.you.user_id === null;
      },
      'like.total': (event) => {
        const before = shown;
        setTotal(event.data.likes);
        if (event.data.likes > before) float(); // others' likes float too
      },
    },
  };
}
