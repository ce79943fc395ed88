// How the desktop widget learns who it works for: a JWT and the patient
// context. In production the host application (Medtech's widget host or an
// integration) hands them over in one of two ways (see docs/webui.md):
//
//   1. the URL fragment: /desktop#token=…&patientId=…&encounterId=…
//      &patientDisplay=…&patientNhi=…&patientDob=…&providerId=… — read once, then removed
//      from the address bar and history at once with history.replaceState.
//      A fragment never reaches the server, so it is in no access log.
//   2. window.postMessage({type: "handoff:init", token, patientId,
//      encounterId, patientDisplay, patientNhi, patientDob, providerId},
//      origin) from
//      the parent frame or opener, whose origin must be the page's own or
//      one listed in Options.HostOrigins. The page announces itself with
//      {type: "handoff:ready"} so the host knows when to send.
//
// In dev mode the demo form gets a dev token from POST /api/dev/token.
//
// The JWT lives in this module's memory only: never in storage, the URL or
// a log line.
import { api, ApiError } from './api.js';

const TOKEN_WAIT_MS = 30000;

export class DesktopAuth {
  constructor({ dev, hostOrigins }) {
    this.dev = dev;
    this.hostOrigins = hostOrigins;
    this.token = '';
    this.context = null;
    this.refreshing = null;
    this.tokenWaiters = [];
    this.initWaiters = [];
    // onToken(token) is told of a token the host sends unasked.
    this.onToken = null;
    window.addEventListener('message', (e) => this.onMessage(e));
  }

  // fromFragment takes the context from the URL fragment, if there is one,
  // and scrubs the fragment either way.
  fromFragment() {
    const hash = location.hash.startsWith('#') ? location.hash.slice(1) : '';
    if (!hash) return null;
    history.replaceState(history.state, '', location.pathname + location.search);
    const p = new URLSearchParams(hash);
    const ctx = normaliseContext(Object.fromEntries(p.entries()));
    if (ctx) this.accept(ctx);
    return ctx;
  }

  // waitForHost resolves with the context of the first valid
  // handoff:init message.
  waitForHost() {
    this.tellHost({ type: 'handoff:ready' });
    return new Promise((resolve) => this.initWaiters.push(resolve));
  }

  accept(ctx) {
    this.context = ctx;
    this.token = ctx.token;
  }

  onMessage(e) {
    if (!this.trusted(e.origin)) return;
    const d = e.data;
    if (!d || typeof d !== 'object') return;
    if (d.type === 'handoff:init') {
      const ctx = normaliseContext(d);
      if (!ctx) return;
      if (this.context && (ctx.patientId !== this.context.patientId || ctx.encounterId !== this.context.encounterId)) {
        // A different patient: start over rather than mix two records.
        location.reload();
        return;
      }
      const again = this.context !== null;
      this.accept(ctx);
      for (const w of this.initWaiters.splice(0)) w(ctx);
      for (const w of this.tokenWaiters.splice(0)) w(ctx.token);
      if (again) this.onToken?.(ctx.token);
    } else if (d.type === 'handoff:token' && typeof d.token === 'string' && d.token) {
      this.token = d.token;
      for (const w of this.tokenWaiters.splice(0)) w(d.token);
      this.onToken?.(d.token);
    }
  }

  trusted(origin) {
    return origin === location.origin || this.hostOrigins.includes(origin);
  }

  // tellHost posts a message without secrets to the parent frame or opener.
  tellHost(msg) {
    const targets = [window.parent !== window ? window.parent : null, window.opener].filter(Boolean);
    for (const t of targets) {
      for (const origin of [location.origin, ...this.hostOrigins]) {
        try { t.postMessage(msg, origin); } catch { /* origin mismatch or closed */ }
      }
    }
  }

  // devLogin gets a dev token for a demo patient.
  async devLogin(patient) {
    const t = await api('/api/dev/token', { method: 'POST' });
    const ctx = normaliseContext({
      token: t.token,
      patientId: patient.patientId,
      encounterId: patient.encounterId,
      patientDisplay: patient.display,
      patientNhi: patient.nhi,
      patientDob: patient.dob,
      providerId: t.providerId,
    });
    this.accept(ctx);
    return ctx;
  }

  // refresh gets a fresh token: a new dev token in dev mode, otherwise
  // from the host (handoff:token-expired → handoff:token). It resolves to
  // '' when none comes.
  refresh() {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => { this.refreshing = null; });
    }
    return this.refreshing;
  }

  async doRefresh() {
    if (this.dev) {
      try {
        const t = await api('/api/dev/token', { method: 'POST' });
        this.token = t.token;
        return t.token;
      } catch {
        return '';
      }
    }
    const fresh = new Promise((resolve) => {
      this.tokenWaiters.push(resolve);
      setTimeout(() => resolve(''), TOKEN_WAIT_MS);
    });
    this.tellHost({ type: 'handoff:token-expired' });
    return fresh;
  }

  // call is api() with the JWT, retried once with a fresh token on 401.
  async call(path, opts = {}) {
    try {
      return await api(path, { ...opts, token: this.token });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      const fresh = await this.refresh();
      if (!fresh) throw err;
      return api(path, { ...opts, token: fresh });
    }
  }
}

// normaliseContext keeps the known fields of a handed-over context and
// checks the required ones.
function normaliseContext(src) {
  const str = (v) => (typeof v === 'string' ? v.trim() : '');
  const ctx = {
    token: str(src.token),
    patientId: str(src.patientId),
    encounterId: str(src.encounterId),
    patientDisplay: str(src.patientDisplay),
    patientNhi: str(src.patientNhi),
    patientDob: str(src.patientDob),
    providerId: str(src.providerId),
  };
  if (!ctx.token || !ctx.patientId || !ctx.encounterId) return null;
  return ctx;
}
