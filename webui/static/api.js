// JSON calls to the handoff API. Errors come back as ApiError with the
// server's {"error":{"code","message"}}; a failure to reach the server is
// status 0, code "network". Nothing here logs: requests carry tokens and
// responses carry patient context.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }

  // retryable reports whether trying the same request again may succeed.
  get retryable() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

export async function api(path, { method = 'GET', token, body, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, {
      method, headers, body: payload, signal,
      cache: 'no-store', credentials: 'same-origin', referrerPolicy: 'no-referrer',
    });
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', 'Could not reach the server. Check the network connection.');
  }
  const text = await res.text().catch(() => '');
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(res.status, e.code || `http_${res.status}`, e.message || `The server answered ${res.status}.`);
  }
  return data;
}

// sleep waits ms, or rejects when signal aborts.
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
  });
}

// backoff returns the delay before retry number attempt (0-based):
// exponential from base, capped, with full jitter in its upper half so many
// clients that failed together do not retry together.
export function backoff(attempt, base = 500, cap = 15000) {
  const d = Math.min(cap, base * 2 ** attempt);
  return d / 2 + Math.random() * (d / 2);
}

// withRetry runs fn until it succeeds, fails with a non-retryable error, or
// has failed `attempts` times.
export async function withRetry(fn, { attempts = 5, base = 800, signal, onRetry } = {}) {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ApiError) || !err.retryable || i + 1 >= attempts) throw err;
      onRetry?.(err, i + 1);
      await sleep(backoff(i, base), signal);
    }
  }
}
