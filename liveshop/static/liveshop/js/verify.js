// Checks a drawn giveaway in the browser (CONTRACT.md, "Provably fair draw"):
// commitment == sha256(seed_hex); each entrant's key is sha256(seed_hex + ":" + user_id);
// the `winners_count` smallest keys win (ties by user id). Data: GET /giveaways/{id}/ and
// GET /giveaways/{id}/entries/ (every page).

import {get, getAll} from './lib/api.js';
import {$, h, pageConfig, say} from './lib/dom.js';
import {errorMessage, fmt, gettext} from './lib/format.js';

async function sha256Hex(text) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

function verdict(node, ok, good, bad) {
  node.textContent = ok ? `✔ ${good}` : `✘ ${bad}`;
  node.className = `check ${ok ? 'ok' : 'bad'}`;
  node.dataset.ok = String(ok);
}

async function verify() {
  const {giveaway: id} = pageConfig();
  const giveaway = await get(`/giveaways/${id}/`);
  $('#giveaway-title').textContent = giveaway.title;
  $('#commitment').textContent = giveaway.commitment;
  if (!giveaway.seed) {
    $('#seed').textContent = gettext('not revealed yet: the draw has not happened');
    return;
  }
  $('#seed').textContent = giveaway.seed;
  const seedHash = await sha256Hex(giveaway.seed);
  $('#seed-hash').textContent = seedHash;
  verdict($('#commitment-check'), seedHash === giveaway.commitment,
    gettext('The seed matches the commitment published before the draw.'),
    gettext('The seed does NOT match the commitment.'));

  const entries = await getAll(`/giveaways/${id}/entries/`);
  $('#entrants').textContent = String(entries.length);
  const keyed = await Promise.all(entries.map(async (entry) => ({
    user_id: entry.user_id,
    key: await sha256Hex(`${giveaway.seed}:${entry.user_id}`),
  })));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.user_id - b.user_id));
  const count = giveaway.winners_count ?? (giveaway.winners || []).length;
  const recomputed = keyed.slice(0, count).map((k) => k.user_id);
  const announced = (giveaway.winners || []).map((w) => (w.user ? w.user.id : w.id));
  const names = new Map((giveaway.winners || []).map((w) => [w.user ? w.user.id : w.id, (w.user || w).display_name]));
  const rows = Math.max(recomputed.length, announced.length);
  $('#winners').replaceChildren(...Array.from({length: rows}, (_, i) => h('tr', {},
    h('td', {}, announced[i] !== undefined ? `${names.get(announced[i])} (#${announced[i]})` : '–'),
    h('td', {}, recomputed[i] !== undefined ? `#${recomputed[i]}` : '–'))));
  const same = [...announced].sort((a, b) => a - b).join(',') === [...recomputed].sort((a, b) => a - b).join(',');
  verdict($('#winners-check'), same,
    fmt(gettext('The %(n)s winners follow from the seed and the entrants.'), {n: announced.length}),
    gettext('The winners do NOT follow from the seed and the entrants.'));
}

verify().catch((err) => say($('#verify-error'), errorMessage(err)));
