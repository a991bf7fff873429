// The REST API of docs/CONTRACT.md, with the session cookie (the page is signed in
// through Django's login) and the CSRF token that session-authenticated writes need.

// An answer without the contract's JSON body (a proxy's error page, Django's debug page)
// still gets the code its status means.
const STATUS_CODES = {401: 'not_authenticated', 403: 'permission_denied', 404: 'not_found', 429: 'rate_limited'};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || STATUS_CODES[status] || 'error';
    this.detail = (body && body.detail) || '';
    this.fields = (body && body.fields) || {};
  }
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : '';
}

/**
 * api('POST', '/orders/', {body, idempotencyKey}) -> the JSON answer; throws ApiError
 * with the contract's {code, detail, fields} for a 4xx or 5xx.
 */
export async function api(method, path, {body, idempotencyKey} = {}) {
  const headers = {Accept: 'application/json'};
  // A FormData body (a file upload) goes as multipart/form-data, its boundary set by fetch.
  const form = typeof FormData !== 'undefined' && body instanceof FormData;
  if (body !== undefined && !form) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRFToken'] = csrfToken();
  if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
  let response;
  try {
    response = await fetch(path.startsWith('/api/') ? path : `/api/v1${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined || form ? body : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, {code: 'network', detail: String(err)});
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body, options = {}) => api('POST', path, {body, ...options});
export const patch = (path, body) => api('PATCH', path, {body});
export const del = (path) => api('DELETE', path);
/** POST one file as multipart/form-data: upload('/products/1/photos/', 'image', file). */
export function upload(path, field, file) {
  const form = new FormData();
  form.append(field, file);
  return api('POST', path, {body: form});
}

/** Every result of a paginated list, following `next` (at most `maxPages` pages). */
export async function getAll(path, maxPages = 50) {
  const results = [];
  let url = path;
  for (let page = 0; url && page < maxPages; page += 1) {
    const data = await get(url);
    if (Array.isArray(data)) return data;
    results.push(...data.results);
    url = data.next ? new URL(data.next, location.href).pathname + new URL(data.next, location.href).search : null;
  }
  return results;
}

/**
 * For the panels of features that a deployment may not have yet (gifts, giveaways,
 * moderation, stats): true when the endpoint answers, false on 404 (the panel hides).
 */
export async function available(path) {
  try {
    await get(path);
    return true;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return false;
    throw err;
  }
}
