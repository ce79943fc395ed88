// The phone's check of its session (GET /api/medtech/session/mobile): is
// it still open, for which patient, and how many more photos fit. The
// phone asks before each photo is added and each send, every
// CHECK_INTERVAL_MS while the page is visible, and at once when it becomes
// visible again, so it learns that the session was filed, has expired,
// was left behind by a desktop that moved on to another patient, or that
// this phone was disconnected, and stops offering capture (issue 15).
import { api, ApiError } from './api.js';

export const CHECK_INTERVAL_MS = 15000;

// Why a phone must stop: the kinds phone.js has a screen for.
export const Stop = {
  COMMITTED: 'committed',
  CLOSED: 'closed',
  EXPIRED: 'expired',
  REVOKED: 'revoked',
};

export class StatusWatch {
  // getToken() returns the mobile token; onView(view) gets every good
  // answer; onStop(kind) is called once the session can take no more from
  // this phone.
  constructor({ getToken, onView, onStop }) {
    this.getToken = getToken;
    this.onView = onView;
    this.onStop = onStop;
    this.timer = 0;
    this.inflight = null;
    this.onVisible = () => {
      if (document.visibilityState === 'visible') this.check();
    };
  }

  start() {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (document.visibilityState === 'visible') this.check();
    }, CHECK_INTERVAL_MS);
    document.addEventListener('visibilitychange', this.onVisible);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = 0;
    document.removeEventListener('visibilitychange', this.onVisible);
  }

  // check resolves to true while the phone may send, false once it must
  // stop (onStop has been called), and null when the server could not be
  // reached (the caller goes on; uploads have their own retries).
  check() {
    if (!this.inflight) {
      this.inflight = this.doCheck().finally(() => { this.inflight = null; });
    }
    return this.inflight;
  }

  async doCheck() {
    const token = this.getToken();
    if (!token) return null;
    let view;
    try {
      view = await api('/api/medtech/session/mobile', { token });
    } catch (err) {
      if (!(err instanceof ApiError) || err.retryable) return null;
      this.stopWith(err.code === 'phone_revoked' ? Stop.REVOKED : Stop.EXPIRED);
      return false;
    }
    this.onView(view);
    if (view.phoneActive && view.status === 'open') return true;
    this.stopWith({ committed: Stop.COMMITTED, closed: Stop.CLOSED }[view.status] ?? Stop.EXPIRED);
    return false;
  }

  stopWith(kind) {
    this.stop();
    this.onStop(kind);
  }
}
