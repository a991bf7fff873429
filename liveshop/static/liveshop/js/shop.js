// "My products" (/shop/): the seller's products with their photos; add a photo
// (POST /products/{id}/photos/, multipart `image`) and delete one
// (DELETE /products/{id}/photos/{photo}/).

import {del, getAll, upload} from './lib/api.js';
import {$, h, pageConfig, say, show} from './lib/dom.js';
import {errorMessage, fmt, gettext} from './lib/format.js';
import {productImage} from './lib/photos.js';

const config = pageConfig();
const ACCEPT = 'image/jpeg,image/png,image/webp';

function productCard(product, refresh) {
  const errorLine = h('p', {class: 'error', role: 'alert', hidden: true, 'data-testid': 'photo-error'});
  const full = product.photos.length >= config.photos_max;
  const input = h('input', {type: 'file', accept: ACCEPT, class: 'visually-hidden', 'data-testid': 'photo-file'});
  const status = h('span', {class: 'hint', role: 'status'});
  input.addEventListener('change', async () => {
    const file = input.files[0];
    if (!file) return;
    say(errorLine, '');
    status.textContent = gettext('Uploading…');
    try {
      await upload(`/products/${product.id}/photos/`, 'image', file);
      await refresh();
    } catch (err) {
      status.textContent = '';
      say(errorLine, errorMessage(err));
    }
  });
  return h('li', {class: 'product-card', dataset: {product: product.id}, 'data-testid': 'shop-product'},
    h('div', {class: 'product-head'},
      h('strong', {class: 'item-title'}, product.title),
      h('span', {class: 'hint'}, fmt(gettext('%(n)s of %(max)s photos'), {n: product.photos.length, max: config.photos_max})),
    ),
    h('ul', {class: 'photo-grid'},
      product.photos.map((photo) => h('li', {class: 'photo', dataset: {photo: photo.id}},
        productImage(photo, product.title, {box: 96}),
        h('button', {class: 'link danger', type: 'button', 'data-testid': 'photo-delete', onclick: async () => {
          if (!confirm(gettext('Delete this photo?'))) return;
          say(errorLine, '');
          try {
            await del(`/products/${product.id}/photos/${photo.id}/`);
            await refresh();
          } catch (err) {
            say(errorLine, errorMessage(err));
          }
        }}, gettext('Delete')),
      )),
    ),
    h('label', {class: `button small upload${full ? ' disabled' : ''}`, 'aria-disabled': full ? 'true' : false},
      full ? gettext('Photo limit reached') : gettext('Add a photo'), full ? null : input),
    status,
    errorLine,
  );
}

async function loadShop(section) {
  const list = section.querySelector('.product-list');
  const refresh = () => loadShop(section);
  try {
    const products = await getAll(`/products/?shop=${section.dataset.shop}`);
    list.replaceChildren(...products.map((product) => productCard(product, refresh)));
    show(section.querySelector('.empty'), products.length === 0);
  } catch (err) {
    say($('#shop-error'), errorMessage(err));
  } finally {
    list.removeAttribute('aria-busy');
  }
}

for (const section of document.querySelectorAll('.shop-products')) loadShop(section);
