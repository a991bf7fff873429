// A product's page (/products/{id}/): its photos, skus and prices, and the clips cut from
// shows' replays where its farmer explained it (GET /products/{id}/ `clips`), each with a
// link to that moment of the replay.

import {get} from './lib/api.js';
import {$, h, pageConfig, say, show} from './lib/dom.js';
import {districtName, errorMessage, fmt, gettext, inPageLanguage, money, videoTime} from './lib/format.js';
import {productImage} from './lib/photos.js';

const config = pageConfig();

function clip(item) {
  return h('li', {class: 'clip', 'data-testid': 'clip'},
    h('video', {src: item.url, controls: true, muted: true, playsinline: true, preload: 'metadata', 'data-testid': 'clip-video'}),
    h('a', {href: `/rooms/${item.room}/replay/?t=${Math.floor(item.at_s)}`, 'data-testid': 'clip-replay'},
      fmt(gettext('Watch the show from %(time)s'), {time: videoTime(item.at_s)})));
}

async function load() {
  const product = await get(`/products/${config.product}/`);
  const title = inPageLanguage(product, 'title');
  document.title = `${title} · liveshop`;
  $('#product-title').textContent = title;
  $('#product-origin').textContent = product.origin_district
    ? fmt(gettext('From %(district)s'), {district: districtName(product.origin_district)}) : '';
  $('#product-description').textContent = inPageLanguage(product, 'description');
  $('#product-photos').replaceChildren(...product.photos.map((photo) => productImage(photo, title, {box: 480, large: true})));
  $('#product-skus').replaceChildren(...product.skus.map((sku) => h('li', {},
    h('span', {}, inPageLanguage(sku, 'name')), ' ', h('strong', {class: 'price'}, money(sku.price, sku.currency)),
    sku.stock > 0 ? null : h('span', {class: 'stock'}, ' ', gettext('Sold out')))));
  $('#clips').replaceChildren(...product.clips.map(clip));
  show($('#clips-section'), product.clips.length > 0);
  $('.product').removeAttribute('aria-busy');
}

load().catch((err) => say($('#product-error'), errorMessage(err)));
