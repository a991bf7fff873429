// A replay's chapters: each product the host explained, at its moment in the video. A
// tap jumps there; the chapter playing is marked, and the page shows its product as
// "now explaining" (onChapter).

import {$, h, show} from '../lib/dom.js';
import {inPageLanguage, videoTime} from '../lib/format.js';
import {productImage} from '../lib/photos.js';

export function mountChapters({chapters, onJump, onChapter}) {
  const list = $('#chapters');
  const sorted = [...chapters].sort((a, b) => a.at_s - b.at_s);
  let current = null;

  list.replaceChildren(...sorted.map((chapter) => {
    const title = inPageLanguage(chapter.item.product, 'title');
    return h('li', {},
      h('button', {
        type: 'button', class: 'chapter', dataset: {at: chapter.at_s, item: chapter.item.id}, 'data-testid': 'chapter',
        onclick: () => onJump(chapter),
      },
      productImage(chapter.item.product.image, title, {box: 48}) || h('span', {class: 'thumb blank'}),
      h('span', {class: 'chapter-main'},
        h('time', {class: 'chapter-time'}, videoTime(chapter.at_s)),
        h('span', {class: 'chapter-title'}, title)),
      ));
  }));
  show($('#chapters-panel'), sorted.length > 0);

  return {
    /** The video is at `seconds`: mark the chapter playing (the last one begun). */
    at(seconds) {
      let playing = null;
      for (const chapter of sorted) if (chapter.at_s <= seconds + 0.05) playing = chapter;
      if (playing === current) return;
      current = playing;
      for (const button of list.querySelectorAll('.chapter')) {
        button.classList.toggle('now', Boolean(playing) && Number(button.dataset.at) === playing.at_s);
      }
      onChapter(playing);
    },
  };
}
