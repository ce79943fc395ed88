// uploadImage sends one prepared photo the way the capture API wants it:
//
//   1. POST /api/medtech/session/presigned-url {imageId, contentType, size}
//      → {method, url, headers | fields, key, expiresAt}
//   2. the bytes straight to the store with XMLHttpRequest (for progress):
//      PUT the blob with the given headers, or POST a form of the given
//      fields with the file last (S3 POST policy)
//   3. POST /api/medtech/session/images {imageId, key, metadata?}
//
// Network errors and 5xx are retried with backoff; a 403 from the store
// (URL expired) gets a fresh URL; other 4xx are final. Registration is
// idempotent by imageId, so retrying it, or the whole photo with the same
// imageId, can never file a photo twice.
import { api, backoff, sleep, withRetry } from './api.js';

const UPLOAD_ATTEMPTS = 5;
// An upload with no progress for this long is abandoned and retried: a
// phone that walked out of Wi-Fi range never errors on its own.
const STALL_MS = 30000;
// A presigned URL this close to expiry is replaced before use.
const EXPIRY_MARGIN_MS = 15000;

// Headers a browser sets itself and refuses from scripts.
const FORBIDDEN_HEADERS = new Set(['content-length', 'host', 'connection', 'accept-encoding', 'origin', 'referer']);

export class UploadError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'UploadError';
    this.status = status;
  }

  get retryable() { return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500; }

  get expired() { return this.status === 403; }
}

// uploadImage resolves when the photo is registered. item: {imageId, blob,
// metadata}; onPhase(phase) gets 'uploading' | 'registering';
// onProgress(fraction 0..1) follows the upload.
export async function uploadImage(item, { mobileToken, onPhase, onProgress, signal }) {
  const call = (path, body) => api(path, { method: 'POST', token: mobileToken, body, signal });
  const presign = () => withRetry(() => call('/api/medtech/session/presigned-url', {
    imageId: item.imageId, contentType: 'image/jpeg', size: item.blob.size,
  }), { signal });

  onPhase?.('uploading');
  let grant = await presign();
  let key = grant.key;
  for (let attempt = 0; ; attempt++) {
    if (Date.parse(grant.expiresAt) - Date.now() < EXPIRY_MARGIN_MS) {
      grant = await presign();
      key = grant.key;
    }
    try {
      await send(grant, item.blob, onProgress, signal);
      break;
    } catch (err) {
      if (signal?.aborted) throw err;
      if (!(err instanceof UploadError) || attempt + 1 >= UPLOAD_ATTEMPTS) throw err;
      if (err.expired) {
        grant = await presign();
        key = grant.key;
        continue;
      }
      if (!err.retryable) throw err;
      await sleep(backoff(attempt, 1000), signal);
    }
  }
  onProgress?.(1);

  onPhase?.('registering');
  const reg = { imageId: item.imageId, key };
  if (item.metadata) reg.metadata = item.metadata;
  try {
    return await withRetry(() => call('/api/medtech/session/images', reg), { signal });
  } catch (err) {
    // A retried registration whose first try did land: the photo is in.
    if (err.code === 'image_exists') return null;
    throw err;
  }
}

// send uploads blob as grant says, reporting progress.
function send(grant, blob, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const method = (grant.method || 'PUT').toUpperCase();
    xhr.open(method, grant.url, true);
    let body = blob;
    if (method === 'POST') {
      const form = new FormData();
      for (const [k, v] of Object.entries(grant.fields ?? {})) form.append(k, v);
      form.append('file', blob, 'photo.jpg'); // S3 requires the file last
      body = form;
    } else {
      for (const [k, v] of Object.entries(grant.headers ?? {})) {
        if (!FORBIDDEN_HEADERS.has(k.toLowerCase())) xhr.setRequestHeader(k, v);
      }
    }
    let lastProgress = Date.now();
    const stall = setInterval(() => {
      if (Date.now() - lastProgress > STALL_MS) xhr.abort();
    }, 5000);
    const done = (fn) => (arg) => {
      clearInterval(stall);
      signal?.removeEventListener('abort', onAbort);
      fn(arg);
    };
    const onAbort = () => xhr.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    xhr.upload.onprogress = (e) => {
      lastProgress = Date.now();
      if (e.lengthComputable && e.total > 0) onProgress?.(Math.min(0.99, e.loaded / e.total));
    };
    xhr.onload = done(() => {
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else reject(new UploadError(xhr.status, storeMessage(xhr)));
    });
    xhr.onerror = done(() => reject(new UploadError(0, 'The upload was interrupted. Check the network connection.')));
    xhr.onabort = done(() => reject(signal?.aborted
      ? new DOMException('Upload cancelled', 'AbortError')
      : new UploadError(0, 'The upload stalled. Check the network connection.')));
    xhr.send(body);
  });
}

// storeMessage reads the store's error text: the local store answers the
// API's JSON error shape; S3 answers XML, which is not shown to a GP.
function storeMessage(xhr) {
  try {
    const e = JSON.parse(xhr.responseText)?.error;
    if (e?.message) return e.message;
  } catch { /* not JSON */ }
  return `The photo store answered ${xhr.status}.`;
}
