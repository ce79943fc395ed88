// Expiry you can see (issue 15): while a session holds unfiled photos, the
// desktop says when they will be deleted (the snapshot's deleteAt), warns
// from EXPIRY_WARN_MS before, raises an alert from EXPIRY_ALERT_MS before,
// and offers the last-resort download of the unfiled photos. It never files
// anything by itself: filing needs the GP's review of side and body site.
import { $, announce } from './dom.js';

// EXPIRY_WARN_MS: a GP interrupted by another patient gets a consultation's
// length of notice to come back and file.
export const EXPIRY_WARN_MS = 15 * 60000;
// EXPIRY_ALERT_MS: the last minutes, announced at once (role="alert").
export const EXPIRY_ALERT_MS = 5 * 60000;
// TICK_MS: how often the countdown is redrawn (it shows minutes).
const TICK_MS = 5000;
// REFRESH_MS: inside the warning, how often the snapshot is re-read, since
// activity (an edit, a filing) moves deleteAt later.
const REFRESH_MS = 60000;

export class Expiry {
  // onRefresh() re-reads the snapshot (it calls update); onDownload()
  // saves the unfiled photos; onDue() runs once deleteAt has passed.
  constructor({ onRefresh, onDownload, onDue }) {
    this.onRefresh = onRefresh;
    this.onDue = onDue;
    this.box = $('#expiry');
    this.text = $('#expiry-text');
    this.download = $('#download-unfiled');
    this.download.addEventListener('click', () => onDownload());
    this.deleteAt = 0;
    this.unfiled = 0;
    this.ended = false;
    this.level = '';
    this.lastRefresh = 0;
    this.timer = setInterval(() => this.render(), TICK_MS);
  }

  // update takes the session's deleteAt (RFC 3339) and how many photos are
  // not filed yet.
  update({ deleteAt, unfiled }) {
    if (deleteAt !== undefined) this.deleteAt = Date.parse(deleteAt) || 0;
    if (unfiled !== undefined) this.unfiled = unfiled;
    this.render();
  }

  // end hides the notice for good: the session is gone, so are its photos.
  end() {
    this.ended = true;
    this.render();
  }

  reset() {
    this.ended = false;
    this.deleteAt = 0;
    this.unfiled = 0;
    this.level = '';
    this.render();
  }

  render() {
    if (this.ended || !this.deleteAt || this.unfiled === 0) {
      this.box.hidden = true;
      this.level = '';
      return;
    }
    const left = this.deleteAt - Date.now();
    if (left <= 0) {
      this.onDue?.();
      return;
    }
    const level = left <= EXPIRY_ALERT_MS ? 'alert' : left <= EXPIRY_WARN_MS ? 'warn' : 'info';
    const n = this.unfiled;
    const photos = `${n} photo${n === 1 ? '' : 's'} not filed`;
    const when = `${clock(this.deleteAt)} (in ${duration(left)})`;
    this.text.textContent = level === 'info'
      ? `${photos}. Unfiled photos are deleted at ${when}.`
      : `${photos} will be deleted at ${when}. File them now, or download them.`;
    this.box.dataset.level = level;
    // Only the last minutes interrupt a screen reader; before that the
    // notice is a polite status.
    this.box.setAttribute('role', level === 'alert' ? 'alert' : 'status');
    this.download.classList.toggle('primary', level !== 'info');
    this.box.hidden = false;
    if (level !== this.level && level === 'warn') announce(this.text.textContent);
    this.level = level;
    if (level !== 'info' && Date.now() - this.lastRefresh > REFRESH_MS) {
      this.lastRefresh = Date.now();
      this.onRefresh?.();
    }
  }
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function duration(ms) {
  const min = Math.max(1, Math.ceil(ms / 60000));
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  const m = min % 60;
  return m ? `${h} h ${m} min` : `${h} h`;
}

// downloadPhotos saves each photo ({url, name}) one after another through
// its signed GET URL, as a file the browser keeps. A photo that cannot be
// fetched is counted, not skipped silently.
export async function downloadPhotos(photos) {
  let failed = 0;
  for (const p of photos) {
    try {
      const res = await fetch(p.url, { cache: 'no-store' });
      if (!res.ok) throw new Error(String(res.status));
      const href = URL.createObjectURL(await res.blob());
      const a = document.createElement('a');
      a.href = href;
      a.download = p.name;
      a.hidden = true;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(href), 60000);
    } catch {
      failed++;
    }
  }
  return failed;
}
