// Words and numbers as the page's language shows them. gettext() and interpolate() come
// from Django's JavaScript catalog (/jsi18n/), loaded before the modules.

const catalog = window;

export const gettext = (text) => (catalog.gettext ? catalog.gettext(text) : text);
export const ngettext = (one, many, count) =>
  catalog.ngettext ? catalog.ngettext(one, many, count) : count === 1 ? one : many;
/** fmt('%(name)s bought %(n)s', {name, n}): Python's %-format names, as the catalog keeps them. */
export const fmt = (template, values) =>
  template.replace(/%\((\w+)\)s/g, (_, key) => (values[key] === undefined ? '' : String(values[key])));

const SYMBOLS = {cny: '¥'};
const grouped = new Intl.NumberFormat('en-US');

/** 5800 fen -> "¥58.00": amounts are integers in minor units (CONTRACT.md), never floats. */
export function money(minor, currency = 'cny') {
  if (minor === null || minor === undefined) return '';
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(Math.trunc(minor));
  const major = grouped.format(Math.floor(abs / 100));
  const cents = String(abs % 100).padStart(2, '0');
  const symbol = SYMBOLS[String(currency).toLowerCase()] ?? `${String(currency).toUpperCase()} `;
  return `${sign}${symbol}${major}.${cents}`;
}

/** "58.5" (yuan, as typed in a form) -> 5850 fen, or NaN. */
export function toMinor(text) {
  const match = /^\s*(\d+)(?:[.,](\d{1,2}))?\s*$/.exec(String(text));
  if (!match) return NaN;
  return Number(match[1]) * 100 + Number((match[2] || '0').padEnd(2, '0'));
}

/** Milliseconds -> "4:05" or "1:02:03". */
export function clock(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** A moment in a video, in seconds -> "4:05" (rounded down, as players show it). */
export const videoTime = (seconds) => clock(Math.floor(Math.max(0, seconds)) * 1000);

export function timeOfDay(iso) {
  const date = new Date(iso);
  return date.toLocaleTimeString(document.documentElement.lang || undefined, {hour: '2-digit', minute: '2-digit'});
}

export function dateTime(iso) {
  const date = new Date(iso);
  return date.toLocaleString(document.documentElement.lang || undefined, {
    month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

export function roomStatusLabel(status) {
  return {
    scheduled: gettext('Coming up'),
    live: gettext('Live'),
    ended: gettext('Ended'),
    suspended: gettext('Suspended'),
  }[status] || status;
}

/**
 * A content field in the page's language: `title_en` on an English page when the seller
 * gave one, `name_zh` on a Chinese page (the gift catalog, named in English), else the
 * field as written: inPageLanguage(item, 'sku_name'), inPageLanguage(room, 'title').
 */
export function inPageLanguage(object, field) {
  if (!object) return '';
  const lang = (document.documentElement.lang || '').toLowerCase().startsWith('zh') ? 'zh' : 'en';
  return object[`${field}_${lang}`] || object[field] || '';
}

/** A district's name in the page's language (the API's are English: "Wulong"). */
let districtNames = null;
export function districtName(name) {
  if (districtNames === null) {
    const node = document.getElementById('page-config');
    districtNames = (node && JSON.parse(node.textContent).district_names) || {};
  }
  return districtNames[name] || name;
}

export function orderStatusLabel(status) {
  return {
    pending_payment: gettext('Waiting for payment'),
    paid: gettext('Paid'),
    shipped: gettext('Shipped'),
    delivered: gettext('Delivered'),
    cancelled: gettext('Cancelled'),
    expired: gettext('Expired (not paid in time)'),
    refunded: gettext('Refunded'),
  }[status] || status;
}

/** The message to show for an API or socket error in the contract's shape. */
export function errorMessage(error) {
  const code = error && error.code;
  const known = {
    not_authenticated: gettext('Please sign in first.'),
    permission_denied: gettext('You are not allowed to do this.'),
    not_found: gettext('Not found.'),
    out_of_stock: gettext('Sorry, not enough left in stock.'),
    flash_sold_out: gettext('The flash sale is sold out.'),
    limit_exceeded: gettext('You reached the limit per buyer of this flash sale.'),
    insufficient_coins: gettext('Not enough coins: top up first.'),
    muted: gettext('You are muted in this room.'),
    banned: gettext('You are banned from this room.'),
    comment_blocked: gettext('Your comment contains a blocked word.'),
    rate_limited: gettext('Too fast: wait a moment and try again.'),
    room_not_live: gettext('The show is not live.'),
    conflict: gettext('That is no longer possible.'),
  };
  if (known[code]) return known[code];
  return (error && (error.detail || error.message)) || gettext('Something went wrong. Please try again.');
}
