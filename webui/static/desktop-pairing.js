// The pairing panel: the QR code the phone scans, the same link as text,
// a countdown to the code's expiry and "New code". Once a phone has
// claimed the code it folds away to the phone's line with "Add another
// phone" (a new code; phones already connected keep working). The line
// follows presence on the session's channel, not the claim: "Phone
// connected" only while a phone's page is open and reachable, "Phone
// disconnected" once every phone that was has gone, and "waiting" between
// the claim and the phone's first connection. A phone that says "wrong
// patient" is disconnected, and the line goes.
import { $, announce, formatCountdown } from './dom.js';
import { setPublicOrigin, localURL, loopbackHost } from './desktop-urls.js';

export class Pairing {
  // onNewCode() asks the app for a fresh code (it POSTs the tokens
  // endpoint, which may also move to a new session).
  constructor({ onNewCode, fetchImage }) {
    this.onNewCode = onNewCode;
    this.fetchImage = fetchImage;
    this.panel = $('#pair');
    this.codeBox = $('#pair-code');
    this.connectedBox = $('#pair-connected');
    this.noneBox = $('#pair-none');
    this.phoneCount = $('#phone-count');
    this.phoneLine = $('#phone-line');
    this.phoneMark = $('#phone-mark');
    this.phoneGone = $('#phone-gone');
    // presentPhones is how many phones are present now (null: not known
    // yet); seenPhone says one was present since this session was shown.
    this.presentPhones = null;
    this.seenPhone = false;
    this.qr = $('#qr');
    this.qrFrame = this.qr.parentElement;
    this.qrExpired = $('#qr-expired');
    this.link = $('#mobile-link');
    this.countdown = $('#countdown');
    this.newCodeBtn = $('#new-code');
    this.expiresAt = 0;
    this.timer = 0;
    this.blobURL = '';

    this.newCodeBtn.addEventListener('click', () => this.requestNewCode());
    $('#another-phone').addEventListener('click', () => this.requestNewCode());
    $('#pair-none-code').addEventListener('click', () => this.requestNewCode());
    $('#copy-link').addEventListener('click', () => this.copyLink());
    this.link.addEventListener('focus', () => this.link.select());
    this.qr.addEventListener('error', () => this.qrFallback());
  }

  // show displays a code from POST /api/medtech/session/tokens.
  show(code) {
    this.panel.hidden = false;
    this.codeBox.hidden = false;
    this.connectedBox.hidden = true;
    this.noneBox.hidden = true;
    this.qrFallbackTried = false;
    setPublicOrigin(code.mobileUrl);
    this.qrURL = localURL(code.qrUrl);
    this.setQR(this.qrURL);
    this.link.value = code.mobileUrl;
    this.showLoopbackHint(code.mobileUrl);
    this.expiresAt = Date.parse(code.expiresAt) || 0;
    this.qrFrame.classList.remove('expired');
    this.qrExpired.hidden = true;
    this.tick();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), 1000);
  }

  // showLoopbackHint warns when the code points at this computer itself
  // (the quick start's 127.0.0.1), which no phone can open.
  showLoopbackHint(mobileUrl) {
    const host = loopbackHost(mobileUrl);
    $('#qr-loopback-host').textContent = host;
    $('#qr-loopback').hidden = !host;
  }

  setQR(url) {
    if (this.blobURL) URL.revokeObjectURL(this.blobURL);
    this.blobURL = '';
    this.qr.src = url;
  }

  // qrFallback handles a QR URL that needs the bearer token (an <img>
  // cannot send one): fetch it with the token and show it as a blob.
  async qrFallback() {
    if (this.qrFallbackTried || !this.qrURL || this.qrURL.startsWith('data:') || !this.fetchImage) return;
    this.qrFallbackTried = true;
    try {
      const blob = await this.fetchImage(this.qrURL);
      this.blobURL = URL.createObjectURL(blob);
      this.qr.src = this.blobURL;
    } catch {
      this.qr.alt = 'The QR code could not be loaded; use the link below.';
    }
  }

  tick() {
    const left = this.expiresAt - Date.now();
    if (left <= 0) {
      clearInterval(this.timer);
      this.countdown.textContent = 'This code has expired. Press "New code" to make another.';
      this.countdown.classList.remove('soon');
      this.qrFrame.classList.add('expired');
      this.qrExpired.hidden = false;
      announce('The QR code has expired.');
      return;
    }
    this.countdown.textContent = `Code expires in ${formatCountdown(left)}`;
    this.countdown.classList.toggle('soon', left < 60000);
  }

  // markConnected folds the code away: a phone has claimed it. Whether a
  // phone is connected is presence's to say (setPresentPhones).
  markConnected() {
    if (this.panel.hidden) return;
    clearInterval(this.timer);
    this.codeBox.hidden = true;
    this.noneBox.hidden = true;
    this.connectedBox.hidden = false;
    this.renderPhoneLine();
  }

  // resetPresence forgets the phones of the last session.
  resetPresence() {
    this.presentPhones = null;
    this.seenPhone = false;
    this.renderPhoneLine();
  }

  // setPresentPhones takes how many phones are present on the session's
  // channel now, and says a change out loud.
  setPresentPhones(n) {
    const was = this.presentPhones ?? 0;
    this.presentPhones = n;
    if (n > 0) this.seenPhone = true;
    this.renderPhoneLine();
    if (this.connectedBox.hidden) return;
    if (n > was) announce(n > 1 ? `${n} phones connected` : 'Phone connected');
    else if (n === 0 && was > 0) announce('Phone disconnected');
  }

  renderPhoneLine() {
    const n = this.presentPhones ?? 0;
    let state = 'waiting';
    let text = 'Code scanned: waiting for the phone';
    let mark = '…';
    if (n > 0) {
      [state, text, mark] = ['connected', n > 1 ? `${n} phones connected` : 'Phone connected', '✓'];
    } else if (this.seenPhone) {
      [state, text, mark] = ['disconnected', 'Phone disconnected', '!'];
    }
    this.phoneLine.dataset.state = state;
    this.phoneCount.textContent = text;
    this.phoneMark.textContent = mark;
    this.phoneGone.hidden = state !== 'disconnected';
  }

  // markDisconnected: no phone is connected any more (one said "wrong
  // patient"), and its code is spent.
  markDisconnected() {
    if (this.panel.hidden) return;
    clearInterval(this.timer);
    this.codeBox.hidden = true;
    this.connectedBox.hidden = true;
    this.noneBox.hidden = false;
  }

  async requestNewCode() {
    if (this.newCodeBtn.disabled) return;
    this.newCodeBtn.disabled = true;
    try {
      await this.onNewCode();
    } finally {
      this.newCodeBtn.disabled = false;
    }
  }

  async copyLink() {
    const text = this.link.value;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // No clipboard API outside secure contexts: select for Ctrl+C.
      this.link.focus();
      this.link.select();
      try { document.execCommand('copy'); } catch { /* the text stays selected */ }
    }
    announce('Link copied');
  }

  stop() {
    clearInterval(this.timer);
  }
}
