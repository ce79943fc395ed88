// What rest-scenarios.mjs and realtime-scenarios.mjs share: an SDK error
// as the Go tests read it, and steps that record their error instead of
// stopping the run, so one failure does not hide the others.

export function errInfo(e) {
  return { code: e && e.code, statusCode: e && e.statusCode, message: String(e && e.message) };
}

// stepper returns step(name, fn): it sets out[name] to what fn resolves
// to, or to { error } when fn throws.
export function stepper(out, debug) {
  return async function step(name, fn) {
    debug(`step ${name}`);
    try {
      out[name] = await fn();
    } catch (e) {
      out[name] = { error: errInfo(e) };
    }
  };
}
