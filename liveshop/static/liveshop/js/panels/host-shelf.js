// The host's shelf: feature an item (POST /rooms/{id}/items/{item}/feature/), start a
// flash sale (POST .../flash-sale/ {price, quantity, duration_s, per_buyer_limit?}),
// take an item off (DELETE /rooms/{id}/items/{item}/), and add products found with
// GET /products/?search= (POST /rooms/{id}/items/ {sku}).
// A running flash sale shows the host how it sells (sold of the units, left, a bar and
// the countdown), live from flash.stock; once it ends (flash.ended {sold}) the card keeps
// "Last flash sale: X of Y sold" until the page reloads.

import {del, get, post} from '../lib/api.js';
import {$, h, say} from '../lib/dom.js';
import {clock, errorMessage, fmt, gettext, inPageLanguage, money, toMinor} from '../lib/format.js';
import {productImage} from '../lib/photos.js';
import {ShelfState, everyTick} from '../lib/shelf-state.js';
import {priceLine, tickCountdowns} from './shelf.js';

/** The host's view of a running flash sale (tickCountdowns() keeps its countdown going). */
export function hostFlashBox(sale) {
  const sold = Math.max(0, sale.quantity - sale.remaining);
  const soldText = fmt(gettext('%(sold)s of %(quantity)s sold'), {sold, quantity: sale.quantity});
  const share = sale.quantity > 0 ? Math.min(100, (100 * sold) / sale.quantity) : 0;
  return h(
    'div',
    {class: 'host-flash', dataset: {flash: sale.id, endsAt: sale.ends_at}, 'data-testid': 'flash-sale'},
    h('div', {class: 'host-flash-head'},
      h('strong', {}, '⚡ ', gettext('Flash sale'), ' ', money(sale.price)),
      h('span', {class: 'countdown', 'data-testid': 'flash-countdown'}, clock(new Date(sale.ends_at) - Date.now())),
    ),
    h('div', {
      class: 'flash-progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': sale.quantity,
      'aria-valuenow': sold, 'aria-valuetext': soldText, 'data-testid': 'flash-progress',
    }, h('span', {style: `width: ${share}%`})),
    h('div', {class: 'host-flash-figures'},
      h('span', {class: 'sold', 'data-testid': 'flash-sold'}, soldText),
      h('span', {class: 'remaining', 'data-testid': 'flash-remaining'},
        sale.remaining > 0 ? fmt(gettext('%(n)s left'), {n: sale.remaining}) : gettext('Sold out')),
    ),
  );
}

export function mountHostShelf({roomId, onItems = () => {}}) {
  const list = $('#host-shelf');
  const errorLine = $('#shelf-error');
  const dialog = $('#flash-dialog');
  const flashForm = $('#flash-form');
  let flashItem = null;
  let live = false;
  const lastSales = new Map(); // item id -> {sold, quantity} of its last ended flash sale
  const endedSales = new Set(); // ids of sales ended while the page is open

  const shelf = new ShelfState(render);

  async function act(promise) {
    say(errorLine, '');
    try {
      return await promise;
    } catch (err) {
      say(errorLine, errorMessage(err));
      return null;
    }
  }

  async function reload() {
    const items = await act(get(`/rooms/${roomId}/items/`));
    if (items) {
      shelf.setItems(items);
      // An answer read before a sale ended must not bring the sale back.
      for (const id of endedSales) shelf.flashSales.delete(id);
      render();
    }
  }

  function card(item) {
    const sale = shelf.flashOf(item);
    const last = lastSales.get(item.id);
    const featured = item.id === shelf.featuredId;
    const image = productImage(item.product.image, inPageLanguage(item.product, 'title'), {box: 56});
    return h('li', {class: `item host-item${featured ? ' now' : ''}${image ? '' : ' no-thumb'}`, dataset: {item: item.id}},
      image,
      h('div', {class: 'item-main'},
        h('span', {class: 'item-title'}, inPageLanguage(item.product, 'title')),
        h('span', {class: 'sku'}, inPageLanguage(item, 'sku_name')),
        priceLine(shelf, item),
        h('span', {class: 'stock'}, fmt(gettext('%(n)s in stock'), {n: item.stock})),
      ),
      sale ? hostFlashBox(sale) : null,
      !sale && last
        ? h('p', {class: 'flash-last', 'data-testid': 'flash-last'},
          fmt(gettext('Last flash sale: %(sold)s of %(quantity)s sold'), last))
        : null,
      h('div', {class: 'item-actions'},
        featured
          ? h('span', {class: 'badge now'}, gettext('Now explaining'))
          : h('button', {class: 'button', type: 'button', 'data-testid': 'feature',
            onclick: () => act(post(`/rooms/${roomId}/items/${item.id}/feature/`))}, gettext('Feature')),
        h('button', {class: 'button', type: 'button', 'data-testid': 'flash', disabled: Boolean(sale) || !live,
          title: live ? '' : gettext('Flash sales run while the show is live.'),
          onclick: () => openFlash(item)}, '⚡ ', gettext('Flash sale')),
        h('button', {class: 'link danger', type: 'button', 'data-testid': 'remove',
          onclick: async () => {
            await act(del(`/rooms/${roomId}/items/${item.id}/`));
            reload();
          }}, gettext('Remove')),
      ),
    );
  }

  function render() {
    list.replaceChildren(...shelf.items.map(card));
    tickCountdowns(list);
    onItems(shelf.items);
  }

  function openFlash(item) {
    flashItem = item;
    say($('#flash-error'), '');
    $('#flash-item').textContent = `${inPageLanguage(item.product, 'title')} · ${inPageLanguage(item, 'sku_name')} · ${money(shelf.priceOf(item), item.currency)}`;
    flashForm.elements.price.value = ((Math.round(shelf.priceOf(item) * 0.8)) / 100).toFixed(2);
    dialog.showModal();
  }

  flashForm.addEventListener('submit', async (submit) => {
    if (submit.submitter && submit.submitter.value === 'cancel') return;
    submit.preventDefault();
    const f = flashForm.elements;
    const price = toMinor(f.price.value);
    if (!(price > 0)) {
      say($('#flash-error'), gettext('Enter a price in yuan, e.g. 38.00'));
      return;
    }
    const body = {price, quantity: Number(f.quantity.value), duration_s: Number(f.duration_s.value)};
    if (f.per_buyer_limit.value) body.per_buyer_limit = Number(f.per_buyer_limit.value);
    try {
      const sale = await post(`/rooms/${roomId}/items/${flashItem.id}/flash-sale/`, body);
      shelf.flashSales.set(sale.id, sale);
      dialog.close();
      render();
    } catch (err) {
      say($('#flash-error'), errorMessage(err));
    }
  });

  $('#add-item-form').addEventListener('submit', async (submit) => {
    submit.preventDefault();
    const term = submit.target.elements.search.value.trim();
    const page = await act(get(`/products/?search=${encodeURIComponent(term)}`));
    if (!page) return;
    const onShelf = new Set(shelf.items.map((item) => item.sku));
    $('#product-results').replaceChildren(
      ...page.results.flatMap((product) => product.skus.map((sku) =>
        h('li', {},
          h('span', {}, `${inPageLanguage(product, 'title')} · ${inPageLanguage(sku, 'name')} · ${money(sku.price, sku.currency)}`),
          onShelf.has(sku.id)
            ? h('em', {}, gettext('on the shelf'))
            : h('button', {class: 'button small', type: 'button', 'data-testid': 'add-sku', onclick: async (click) => {
              click.target.disabled = true;
              if (await act(post(`/rooms/${roomId}/items/`, {sku: sku.id}))) reload();
            }}, gettext('Add')),
        ))),
    );
  });

  everyTick(() => tickCountdowns(list));

  // Stock moves without an event of its own (orders hold and release units): the host
  // sees it fresh after anything that moves it, at most once a second.
  let refresh = null;
  const refreshSoon = () => {
    if (!refresh) refresh = setTimeout(() => { refresh = null; reload(); }, 1000);
  };
  const events = {...shelf.events};
  const shelfEnded = events['flash.ended'];
  events['flash.ended'] = (event) => {
    const id = event.data.flash_sale;
    const sale = shelf.flashSales.get(id);
    endedSales.add(id);
    if (sale) lastSales.set(sale.item, {sold: event.data.sold, quantity: sale.quantity});
    shelfEnded(event);
  };
  for (const type of ['flash.started', 'flash.stock', 'flash.ended', 'order.placed']) {
    const handle = events[type];
    events[type] = (event) => {
      if (handle) handle(event);
      refreshSoon();
    };
  }

  return {
    shelf,
    setLive(value) {
      live = value;
      render();
    },
    events,
  };
}
