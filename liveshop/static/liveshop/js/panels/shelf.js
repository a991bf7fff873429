// The viewer's shelf: the featured ("now explaining") item on top, every item with its
// price, stock and flash sale (countdown, units left), and a Buy button (checkout.js).

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

export function mountShelf({onBuy}) {
  const list = $('#shelf');
  const featuredPanel = $('#featured');
  const featuredBox = $('#featured-item');
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
        h('span', {class: 'item-title'}, inPageLanguage(item.product, 'title')),
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
    tickCountdowns(document);
  }

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
