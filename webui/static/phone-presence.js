// The phone's presence on its session's channel: the desktop shows "Phone
// connected" only while this page is open and reachable, not merely
// because its QR code was claimed.
//
// The page opens the realtime socket with its mobile token (which the
// server accepts for presence on this session's channel only) and enters
// with {device: "phone"}. realtime.js enters again on every new socket, so
// a network blip shows on the desktop only if it outlasts the server's
// presence grace. The page leaves when it is hidden for good (pagehide:
// closed, navigated away, or put in the back/forward cache) and enters
// again if it comes back from that cache. Nothing here is logged.
import { RealtimeClient, Close } from './realtime.js';

export class PhonePresence {
  // getToken() returns the mobile token, or '' once there is none.
  constructor({ getToken }) {
    this.getToken = getToken;
    this.rt = null;
    this.channel = '';
    this.onPageHide = () => this.pause();
    this.onPageShow = (e) => { if (e.persisted) this.resume(); };
  }

  // enter joins the presence of sessionId's channel (again, if it already
  // did, for another session).
  enter(sessionId) {
    const channel = `session:${sessionId}`;
    if (this.rt && this.channel === channel) return;
    this.stop();
    this.channel = channel;
    this.rt = new RealtimeClient({
      getToken: () => this.getToken(),
      // 4009: the session's expiry (as the socket last knew it) passed;
      // the same token works again if the session is still open. Any
      // other refusal means this phone is done.
      onAuthError: (code) => (code === Close.TOKEN_EXPIRED ? this.getToken() || null : null),
    });
    this.rt.enterPresence(channel, { device: 'phone' });
    this.rt.connect();
    window.addEventListener('pagehide', this.onPageHide);
    window.addEventListener('pageshow', this.onPageShow);
  }

  // pause leaves and closes the socket; resume opens it again.
  pause() {
    this.rt?.close();
  }

  resume() {
    if (!this.rt || !this.getToken()) return;
    this.rt.enterPresence(this.channel, { device: 'phone' });
    this.rt.connect();
  }

  // stop leaves for good: the phone declined, or its session ended.
  stop() {
    window.removeEventListener('pagehide', this.onPageHide);
    window.removeEventListener('pageshow', this.onPageShow);
    this.rt?.close();
    this.rt = null;
    this.channel = '';
  }
}
