// The phone's review list helpers (issue 15): a full-screen view to check
// focus before sending, an action bar that never hides the list, and an
// undo for Delete.
import { $ } from './dom.js';
import { watchHeight } from './sticky-bars.js';

// UNDO_MS is how long "Photo removed — Undo" stays: long enough to read
// and reach, short enough not to sit over the list.
export const UNDO_MS = 5000;

// PhotoView is the full-screen view of one photo: a modal <dialog> with
// Close first in focus order; the page keeps pinch-zoom (the viewport
// allows scaling and the image allows touch pinch), so the GP can zoom in
// to check focus.
export class PhotoView {
  constructor() {
    this.dialog = $('#photo-view');
    this.img = $('#photo-view-img');
    this.caption = $('#photo-view-caption');
    this.opener = null;
    this.dialog.addEventListener('close', () => {
      this.img.removeAttribute('src');
      this.opener?.focus();
      this.opener = null;
    });
  }

  open(url, label, opener) {
    if (!url) return;
    this.opener = opener;
    this.img.src = url;
    this.img.alt = label;
    this.caption.textContent = label;
    if (!this.dialog.open) this.dialog.showModal();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }
}

// watchActionBar keeps --action-bar-h equal to the sticky bar's height.
// phone.css pads the list and sets scroll-padding-bottom from it, so
// scrolling a photo's Delete into view (by focus, or a tap's scroll)
// leaves it above the bar, never under it.
export function watchActionBar(bar) {
  watchHeight(bar, '--action-bar-h');
}

// UndoToast offers to bring back the last removed photo. A photo is only
// taken out of the list, never thrown away, until the toast has gone (or
// another photo is removed), so Undo can always restore it.
export class UndoToast {
  constructor() {
    this.node = $('#toast');
    this.text = $('#toast-text');
    this.timer = 0;
    this.pending = null; // {restore, forget}
    $('#toast-undo').addEventListener('click', () => this.undo());
  }

  // offer shows the toast for a removal; restore() puts it back,
  // forget() lets it go for good.
  offer(text, restore, forget) {
    this.settle();
    this.pending = { restore, forget };
    this.text.textContent = text;
    this.node.hidden = false;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.settle(), UNDO_MS);
  }

  undo() {
    const p = this.pending;
    this.pending = null;
    this.hide();
    p?.restore();
  }

  // settle makes a pending removal final.
  settle() {
    const p = this.pending;
    this.pending = null;
    this.hide();
    p?.forget();
  }

  hide() {
    clearTimeout(this.timer);
    this.node.hidden = true;
  }
}
