// Product photos and room covers as <img>: lazy, with width and height (the box the
// picture fits in, keeping its aspect ratio) so nothing jumps as they load, and the
// product's title as alt text. `image` is the API's {url, thumb_url, width, height}.

import {h} from './dom.js';

/** An <img> of `image` fitting a `box` x `box` square (null when there is no image). */
export function productImage(image, alt, {box = 64, large = false, className = 'thumb'} = {}) {
  if (!image) return null;
  const ratio = image.width && image.height ? image.width / image.height : 1;
  const width = Math.round(ratio >= 1 ? box : box * ratio);
  const height = Math.round(ratio >= 1 ? box / ratio : box);
  return h('img', {
    class: className, src: large ? image.url : image.thumb_url, alt, width, height, loading: 'lazy', decoding: 'async',
    'data-testid': 'product-photo',
  });
}

/** A room's 16:9 cover, or null. */
export function coverImage(cover, alt, {width = 480} = {}) {
  if (!cover) return null;
  return h('img', {
    class: 'cover', src: cover.thumb_url, alt, width, height: Math.round(width * 9 / 16), loading: 'lazy',
    decoding: 'async', 'data-testid': 'room-cover',
  });
}
