// The viewer's shelf: the featured ("now explaining") item on top, every item with its
// price, stock and flash sale (countdown, units left), and a Buy button (checkout.js).
// A running flash sale also shows on the video (#flash-now), so its countdown and units
// left stay in view wherever the viewer is; the dock's bag button counts the items.

import {$, h, show} from '../lib/dom.js';
import {clock, fmt, gettext, inPageLanguage, money} from '../lib/format.js';
import {productImage} from '../lib/photos.js';
import {ShelfState, everyTick, setText} from '../lib/shelf-state.js';

export function flashBadge(sale) {
  return h(
    'div',
    {class: 'flash', dataset: {flash: sale.id, endsAt: sale.ends_at}, 'data-testid': 'flash-sale'},
    h('strong', {}, '⚡ ', gettext('Flash sale'), ' ', money(sale.price)),
    h('span', {class: 'remaining', 'data-testid': 'flash-remaining'},
      sale.remaining > 0 ? fmt(gettext('%(n)s left'), {n: sale.remaining}) : gettext('Sold out')),
    h('span', {class: 'countdown', 'data-testid': 'flash-countdown'}, clock(new Date(sale.ends_at) - Date.now())),
  );
}

/** Refresh every countdown on screen; a sale whose time is up reads "Ended". */
export function tickCountdowns(root) {
  for (const badge of root.querySelectorAll('[data-ends-at]')) {
    const left = new Date(badge.dataset.endsAt) - Date.now();
    const countdown = badge.querySelector('.countdown');
    if (countdown) setText(countdown, left > 0 ? clock(left) : gettext('Ended'));
    badge.classList.toggle('over', left <= 0);
  }
}

export function priceLine(shelf, item) {
  const now = shelf.priceOf(item);
  return h(
    'span',
    {class: 'price'},
    h('strong', {'data-testid': 'item-price'}, money(now, item.currency)),
    now !== item.price ? h('s', {}, money(item.price, item.currency)) : null,
  );
}

/** The sale that the video's flash pill shows: the one that ends first. */
function runningSale(shelf) {
  const running = [...shelf.flashSales.values()].filter((sale) => sale.status === 'active');
  running.sort((a, b) => new Date(a.ends_at) - new Date(b.ends_at));
  return running[0] || null;
}

function flashPill(pill, sale, item) {
  show(pill, Boolean(sale && item));
  if (!sale || !item) return;
  pill.dataset.endsAt = sale.ends_at;
  pill.replaceChildren(
    h('strong', {}, '⚡ ', money(sale.price, item.currency)),
    h('span', {class: 'pill-title'}, inPageLanguage(item.product, 'title')),
    h('span', {'data-testid': 'flash-now-remaining'},
      sale.remaining > 0 ? fmt(gettext('%(n)s left'), {n: sale.remaining}) : gettext('Sold out')),
    h('span', {class: 'countdown', 'data-testid': 'flash-now-countdown'}, clock(new Date(sale.ends_at) - Date.now())),
  );
}

export function mountShelf({onBuy, onFlash = () => {}, linkProducts = false}) {
  const list = $('#shelf');
  const featuredPanel = $('#featured');
  const featuredBox = $('#featured-item');
  const pill = $('#flash-now');
  const count = $('#shelf-count');
  let canBuy = false;

  const shelf = new ShelfState(render);

  function card(item, {featured = false} = {}) {
    const sale = shelf.flashOf(item);
    const soldOut = sale ? sale.remaining <= 0 : item.stock <= 0;
    return h(
      featured ? 'div' : 'li',
      {class: `item${featured ? ' is-featured' : ''}${item.id === shelf.featuredId ? ' now' : ''}`, dataset: {item: item.id}},
      productImage(item.product.image, inPageLanguage(item.product, 'title'), {box: featured ? 120 : 64, large: featured}),
      h('div', {class: 'item-main'},
        h('span', {class: 'item-title'}, linkProducts
          ? h('a', {href: `/products/${item.product.id}/`, 'data-testid': 'product-link'}, inPageLanguage(item.product, 'title'))
          : inPageLanguage(item.product, 'title')),
        h('span', {class: 'sku'}, inPageLanguage(item, 'sku_name')),
        priceLine(shelf, item),
        sale ? flashBadge(sale) : h('span', {class: 'stock'}, soldOut ? gettext('Sold out') : fmt(gettext('%(n)s in stock'), {n: item.stock})),
      ),
      h('button', {
        class: 'button primary buy', type: 'button', disabled: soldOut || !canBuy, 'data-testid': 'buy',
        onclick: () => onBuy(item, shelf),
      }, gettext('Buy')),
    );
  }

  function render() {
    list.replaceChildren(...shelf.items.map((item) => card(item)));
    const featured = shelf.featured();
    show(featuredPanel, Boolean(featured));
    featuredBox.replaceChildren(featured ? card(featured, {featured: true}) : '');
    const sale = runningSale(shelf);
    flashPill(pill, sale, sale && shelf.items.find((item) => item.id === sale.item));
    count.textContent = String(shelf.items.length);
    show(count, shelf.items.length > 0);
    tickCountdowns(document);
  }

  pill.addEventListener('click', () => {
    const sale = runningSale(shelf);
    onFlash(sale ? list.querySelector(`[data-item="${sale.item}"]`) : null);
  });

  everyTick(() => tickCountdowns(document));

  return {
    shelf,
    setCanBuy(value) {
      canBuy = value;
      render();
    },
    events: shelf.events,
  };
}
