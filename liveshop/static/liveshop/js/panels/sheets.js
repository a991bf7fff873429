// On a phone the room page is the video, full screen, with the shelf and the gifts as
// bottom sheets over it: the dock's buttons (data-sheet="<panel id>") open them, the
// backdrop, a close button (data-close-sheet), Escape or Back close them. On a wide
// screen the same panels sit on the page and the dock is not shown; opening a sheet
// there scrolls its panel into view instead.

import {$, show} from '../lib/dom.js';

const PHONE = window.matchMedia('(max-width: 899px)');

export function mountSheets() {
  const backdrop = $('#sheet-backdrop');
  let open = null;

  function close() {
    if (!open) return;
    open.classList.remove('open');
    open.removeAttribute('aria-modal');
    open = null;
    show(backdrop, false);
  }

  function openSheet(panel) {
    if (!PHONE.matches) {
      panel.scrollIntoView({behavior: 'smooth', block: 'start'});
      return;
    }
    if (open === panel) return;
    close();
    open = panel;
    panel.classList.add('open');
    panel.setAttribute('aria-modal', 'true');
    show(backdrop, true);
    const heading = panel.querySelector('h2');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({preventScroll: true});
    }
  }

  for (const button of document.querySelectorAll('[data-sheet]')) {
    button.addEventListener('click', () => openSheet(document.getElementById(button.dataset.sheet)));
  }
  for (const button of document.querySelectorAll('[data-close-sheet]')) button.addEventListener('click', close);
  backdrop.addEventListener('click', close);
  document.addEventListener('keydown', (key) => {
    if (key.key === 'Escape') close();
  });
  PHONE.addEventListener('change', close);

  return {
    /** Open a panel as a sheet (a phone) or bring it into view (a wide screen). */
    open: (id) => openSheet(document.getElementById(id)),
    close,
  };
}
