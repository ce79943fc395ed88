// The live photo grid of the desktop widget: one card per image with its
// thumbnail, side, body site and notes (saved as the GP edits them), its
// filing state, and remove. Cards are keyed by image id, and every update
// (snapshot or event) is an idempotent upsert, so a replayed event or a
// snapshot that overlaps events changes nothing twice.
import { $, role, cloneTemplate, announce } from './dom.js';
import {
  fillLateralitySelect, fillBodySiteList, setBodySiteInput, bodySiteFromInput, bodySiteLabel, LATERALITY,
} from './bodysites.js';
import { localURL } from './desktop-urls.js';

const SAVE_DELAY_SELECT = 250;
const SAVE_DELAY_TEXT = 800;
const REMOVE_CONFIRM_MS = 4000;

export class PhotoGrid {
  // call(path, opts) is the authenticated API; onChange() runs after any
  // change of the set of images or their filing state; onRetry(id) files
  // one image again; onCancel(id) stops its filing in the background;
  // onStale() asks for a snapshot (e.g. an image URL expired).
  constructor({ call, onChange, onRetry, onCancel, onStale }) {
    this.call = call;
    this.onChange = onChange;
    this.onRetry = onRetry;
    this.onCancel = onCancel;
    this.onStale = onStale;
    this.sessionId = '';
    this.ended = false;
    this.cards = new Map();
    this.section = $('#photos');
    this.grid = $('#grid');
    this.empty = $('#photos-empty');
    this.count = $('#photo-count');
    this.viewer = $('#viewer');
    this.viewerImg = $('#viewer-img');
    this.viewerCaption = $('#viewer-caption');
    this.viewer.addEventListener('close', () => { this.viewerImg.removeAttribute('src'); });
    fillBodySiteList($('#bodysite-list'));
    this.viewer.addEventListener('click', (e) => { if (e.target === this.viewer) this.viewer.close(); });
  }

  reset(sessionId) {
    this.sessionId = sessionId;
    this.ended = false;
    for (const c of this.cards.values()) c.destroy();
    this.cards.clear();
    this.section.hidden = false;
    this.render();
  }

  // applySnapshot makes the grid match a snapshot's images. With prune,
  // cards of images the snapshot lacks are removed (use it only when the
  // snapshot is newer than every event applied, i.e. before resubscribing
  // from its cursor).
  applySnapshot(images, { prune = true } = {}) {
    const ids = new Set();
    for (const img of images ?? []) {
      ids.add(img.id);
      this.upsert(img, { quiet: true });
    }
    if (prune) {
      for (const id of [...this.cards.keys()]) if (!ids.has(id)) this.remove(id, { quiet: true });
    }
    this.render();
  }

  upsert(image, { quiet = false } = {}) {
    if (!image?.id) return;
    let card = this.cards.get(image.id);
    if (card) {
      card.update(image);
    } else {
      card = new Card(this, image);
      this.cards.set(image.id, card);
      this.insertInOrder(card);
      if (!quiet) announce(`New photo received. ${this.cards.size} photo${this.cards.size === 1 ? '' : 's'} in total.`);
    }
    if (!quiet) this.render();
  }

  insertInOrder(card) {
    const after = [...this.cards.values()].filter((c) => c !== card && c.node.isConnected && compareImages(c.image, card.image) > 0);
    const next = after.sort((a, b) => compareImages(a.image, b.image))[0];
    this.grid.insertBefore(card.node, next ? next.node : null);
  }

  remove(id, { quiet = false } = {}) {
    const card = this.cards.get(id);
    if (!card) return;
    if (this.viewer.open && this.viewer.dataset.imageId === id) this.viewer.close();
    card.destroy();
    this.cards.delete(id);
    if (!quiet) {
      announce('A photo was removed.');
      this.render();
    }
  }

  // setCommit updates one image's filing state: {status, alexId, error}.
  setCommit(id, commit) {
    const card = this.cards.get(id);
    if (!card) return;
    card.setCommit(commit);
    this.render();
  }

  markCommitting(ids) {
    for (const id of ids) this.cards.get(id)?.setCommit({ status: 'committing' });
    this.render();
  }

  // end locks every card of a session that is gone: nothing on it can
  // work any more, so no control invites a try.
  end() {
    this.ended = true;
    for (const c of this.cards.values()) c.lockEnded();
    this.render();
  }

  // unfiledPhotos lists the photos not filed, for the last-resort
  // download: their signed URL and a file name without patient data.
  unfiledPhotos() {
    return this.ordered().filter((c) => c.commitStatus !== 'committed' && c.image.url).map((c) => ({
      url: c.image.url,
      name: `wound-photo-${c.index}.${extension(c.image.contentType)}`,
    }));
  }

  // unfiledIds lists images not yet filed (pending or failed), in order.
  unfiledIds() {
    return this.ordered().filter((c) => c.commitStatus === 'pending' || c.commitStatus === 'failed').map((c) => c.image.id);
  }

  counts() {
    const n = { total: 0, pending: 0, committing: 0, committed: 0, failed: 0, noSite: 0, background: 0 };
    for (const c of this.cards.values()) {
      n.total++;
      n[c.commitStatus] = (n[c.commitStatus] ?? 0) + 1;
      if (c.commitStatus === 'committing' && c.background) n.background++;
      if (c.commitStatus !== 'committed' && !c.site) n.noSite++;
    }
    return n;
  }

  ordered() {
    return [...this.cards.values()].sort((a, b) => compareImages(a.image, b.image));
  }

  // flushEdits saves every pending edit now and waits for the saves, so a
  // commit files what the GP sees.
  async flushEdits() {
    await Promise.all([...this.cards.values()].map((c) => c.flush()));
  }

  // unsavedEdits returns, by image id, the edits of ids whose save failed;
  // the commit request carries them so they are filed all the same.
  unsavedEdits(ids) {
    const out = {};
    for (const id of ids) {
      const c = this.cards.get(id);
      if (c?.dirty) out[id] = c.patch();
    }
    return out;
  }

  markSaved(ids) {
    for (const id of ids) this.cards.get(id)?.savedWithCommit();
  }

  // withoutSite lists the cards of ids that have no body site.
  withoutSite(ids) {
    return ids.map((id) => this.cards.get(id)).filter((c) => c && !c.site);
  }

  // applyToAll copies src's side and body site to every other photo not
  // filed yet, each saved by its own PATCH like a hand edit.
  applyToAll(src) {
    let n = 0;
    for (const c of this.ordered()) {
      if (c === src || !c.editable()) continue;
      c.laterality.value = src.laterality.value;
      c.setSite(src.site);
      c.edited(SAVE_DELAY_SELECT);
      n++;
    }
    src.flush();
    const what = [src.laterality.selectedOptions[0]?.textContent, bodySiteLabel(src.site)].filter((x) => x && x !== 'Not set').join(', ') || 'No side or site';
    announce(`${what} applied to ${n} other photo${n === 1 ? '' : 's'}.`);
  }

  render() {
    const n = this.cards.size;
    const editable = [...this.cards.values()].filter((c) => c.editable()).length;
    for (const c of this.cards.values()) c.applyBtn.hidden = editable < 2 || !c.editable();
    this.empty.hidden = n > 0;
    this.count.textContent = n ? `(${n})` : '';
    this.ordered().forEach((c, i) => c.setIndex(i + 1));
    this.onChange?.();
  }

  openViewer(card) {
    if (card.node.classList.contains('gone')) return;
    this.viewer.dataset.imageId = card.image.id;
    this.viewerImg.src = localURL(card.image.url);
    this.viewerImg.alt = card.describe();
    this.viewerCaption.textContent = card.describe();
    if (!this.viewer.open) this.viewer.showModal();
  }
}

function compareImages(a, b) {
  const t = (Date.parse(a.createdAt) || 0) - (Date.parse(b.createdAt) || 0);
  if (t !== 0) return t;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

// Card is one image in the grid.
class Card {
  constructor(grid, image) {
    this.grid = grid;
    this.node = cloneTemplate('card-template');
    this.image = image;
    this.index = 0;
    this.dirty = false;
    this.saveTimer = 0;
    this.saving = null;
    this.removeArmed = 0;
    this.commitStatus = 'pending';

    this.img = role(this.node, 'img');
    this.enlarge = role(this.node, 'enlarge');
    this.laterality = role(this.node, 'laterality');
    this.bodysite = role(this.node, 'bodysite');
    this.notes = role(this.node, 'notes');
    this.state = role(this.node, 'state');
    this.save = role(this.node, 'save');
    this.retryBtn = role(this.node, 'retry');
    this.cancelBtn = role(this.node, 'cancel');
    this.removeBtn = role(this.node, 'remove');
    this.applyBtn = role(this.node, 'apply-all');
    this.siteError = role(this.node, 'site-error');
    this.site = null; // the body-site coding shown; null: not set
    this.next = role(this.node, 'next');
    this.details = role(this.node, 'details');
    this.detailsText = role(this.node, 'details-text');
    this.background = false;
    this.node.dataset.imageId = image.id;
    fillLateralitySelect(this.laterality);

    this.enlarge.addEventListener('click', () => grid.openViewer(this));
    this.img.addEventListener('error', () => this.imageFailed());
    this.laterality.addEventListener('change', () => this.edited(SAVE_DELAY_SELECT));
    // A site picked from the list (or typed in full) is saved at once;
    // other text is checked when the GP leaves the field.
    this.bodysite.addEventListener('input', () => this.siteTyped(false));
    this.bodysite.addEventListener('change', () => this.siteTyped(true));
    this.applyBtn.addEventListener('click', () => grid.applyToAll(this));
    this.notes.addEventListener('input', () => this.edited(SAVE_DELAY_TEXT));
    this.notes.addEventListener('blur', () => this.flush());
    this.retryBtn.addEventListener('click', () => grid.onRetry?.(this.image.id));
    this.cancelBtn.addEventListener('click', () => {
      this.cancelBtn.disabled = true;
      this.cancelBtn.textContent = 'Cancelling…';
      grid.onCancel?.(this.image.id);
    });
    this.removeBtn.addEventListener('click', () => this.removeClicked());

    this.update(image);
  }

  update(image) {
    this.image = { ...this.image, ...image };
    if (image.url && this.wantsURL(image)) {
      this.img.src = localURL(image.url);
      this.shownURLExpires = Date.parse(image.urlExpiresAt) || 0;
      this.node.classList.remove('gone');
    }
    // Never overwrite what the GP is typing or has not saved yet.
    if (!this.dirty && !this.saving && document.activeElement !== this.notes) {
      const m = image.metadata ?? {};
      this.laterality.value = LATERALITY.some((l) => l.value === m.laterality) ? m.laterality : '';
      this.setSite(m.bodySite?.code ? m.bodySite : null);
      this.notes.value = m.notes ?? '';
    }
    if (image.commit) this.setCommit(image.commit, { fromServer: true });
    this.describeImage();
  }

  // wantsURL: every snapshot and event signs a new URL for the same bytes;
  // the thumbnail is reloaded only when it has none, failed to load, or its
  // URL is about to expire, and never once filed (the server deletes the
  // bytes after filing, so a new URL would only 404).
  wantsURL(image) {
    const cur = this.img.getAttribute('src');
    if (!cur) return true;
    const loaded = this.img.complete && this.img.naturalWidth > 0;
    if (loaded && (image.commit?.status === 'committed' || this.commitStatus === 'committed')) return false;
    if (!loaded && this.img.complete) return true;
    return this.shownURLExpires > 0 && this.shownURLExpires - Date.now() < 5 * 60000;
  }

  editable() {
    return this.commitStatus === 'pending' || this.commitStatus === 'failed';
  }

  // setSite shows coding (null: none) as the card's body site.
  setSite(coding) {
    this.site = coding ? { ...coding } : null;
    setBodySiteInput(this.bodysite, this.site);
    this.siteError.hidden = true;
    this.bodysite.removeAttribute('aria-invalid');
  }

  // siteTyped reads the body-site field. On input only a complete match
  // counts; on change, text that names no site is an error shown on the
  // card, and the saved site stays as it was.
  siteTyped(final) {
    const r = bodySiteFromInput(this.bodysite);
    if (r.invalid) {
      if (!final) return;
      this.siteError.textContent = `No body site matches "${this.bodysite.value.trim()}". Pick one from the list.`;
      this.siteError.hidden = false;
      this.bodysite.setAttribute('aria-invalid', 'true');
      return;
    }
    if (!final && r.coding && bodySiteLabel(r.coding).toLowerCase() !== this.bodysite.value.trim().toLowerCase()) return;
    if ((r.coding?.code ?? '') === (this.site?.code ?? '')) {
      if (final) this.setSite(this.site); // tidy "sacr" into "Sacrum"
      return;
    }
    this.setSite(r.coding);
    this.edited(SAVE_DELAY_SELECT);
  }

  imageFailed() {
    if (this.commitStatus === 'committed') {
      // Filed: the server no longer holds the bytes.
      this.node.classList.add('gone');
      return;
    }
    this.grid.onStale?.();
  }

  setIndex(i) {
    this.index = i;
    this.describeImage();
  }

  describe() {
    const parts = [`Photo ${this.index}`];
    const site = bodySiteLabel(this.site);
    const side = this.laterality.value;
    if (site) parts.push(side === 'left' || side === 'right' ? `${side} ${site.toLowerCase()}` : site);
    return parts.join(', ');
  }

  describeImage() {
    const d = this.describe();
    this.img.alt = d;
    this.enlarge.setAttribute('aria-label', `Enlarge ${d}`);
  }

  setCommit(commit, { fromServer = false } = {}) {
    let status = commit?.status || 'pending';
    // A snapshot taken before a commit started must not wipe the spinner.
    if (fromServer && this.commitStatus === 'committing' && status === 'pending') status = 'committing';
    // A filing still running after its request answered goes on in the
    // background (the reply, or a snapshot, says committing).
    if (status !== 'committing') this.background = false;
    else if (commit?.background || (fromServer && this.commitStatus !== 'committing')) this.background = true;
    this.commitStatus = status;
    this.node.dataset.commit = status;
    this.node.dataset.background = String(this.background);
    const locked = status === 'committing' || status === 'committed';
    for (const c of [this.laterality, this.bodysite, this.notes, this.applyBtn]) c.disabled = locked;
    this.removeBtn.hidden = status === 'committed';
    this.removeBtn.disabled = status === 'committing';
    this.retryBtn.hidden = status !== 'failed';
    this.cancelBtn.hidden = !(status === 'committing' && this.background);
    this.cancelBtn.disabled = false;
    this.cancelBtn.textContent = 'Cancel';
    this.showProblem(status === 'failed' ? commit.error : null);
    this.state.replaceChildren();
    switch (status) {
      case 'committing': {
        const s = document.createElement('span');
        s.className = 'spinner';
        s.setAttribute('aria-hidden', 'true');
        this.state.append(s, this.background ? ' Still filing in the background…' : ' Filing to record…');
        break;
      }
      case 'committed': {
        this.state.append('✓ Filed to record');
        if (commit.alexId) {
          const code = document.createElement('code');
          code.textContent = commit.alexId;
          this.state.append(' · ', code);
        }
        break;
      }
      case 'failed':
        this.state.textContent = `Not filed: ${errorText(commit.error)}`;
        break;
      default:
        this.state.textContent = 'Not filed yet';
    }
    if (this.grid.ended) this.lockEnded();
  }

  // showProblem shows a failure's next step and, collapsed, ALEX's own
  // answer for the IT person; a stored failure (a string) has neither.
  showProblem(error) {
    const next = typeof error === 'object' && error ? error.nextStep : '';
    const details = typeof error === 'object' && error ? error.details : '';
    this.next.textContent = next ?? '';
    this.next.hidden = !next;
    this.detailsText.textContent = details ?? '';
    this.details.hidden = !details;
    this.details.open = false;
  }

  // lockEnded: the session is gone, so nothing on this photo can work.
  lockEnded() {
    this.node.classList.add('ended');
    for (const c of [this.laterality, this.bodysite, this.notes]) c.disabled = true;
    for (const b of [this.retryBtn, this.cancelBtn, this.removeBtn]) b.hidden = true;
    this.next.hidden = true;
    if (this.commitStatus !== 'committed') this.state.textContent = 'Not filed: the session has ended.';
  }

  edited(delay) {
    this.dirty = true;
    this.describeImage();
    this.grid.onChange?.();
    this.setSave('Unsaved changes');
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => this.flush(), delay);
  }

  // flush saves pending edits now; it resolves when the save has finished
  // (also when it failed: the card says so and keeps the edit).
  async flush() {
    clearTimeout(this.saveTimer);
    if (this.saving) await this.saving;
    if (!this.dirty) return;
    this.dirty = false;
    this.saving = this.saveNow().finally(() => { this.saving = null; });
    await this.saving;
  }

  // patch is the card's metadata as a JSON merge patch (internal/capture's
  // OpenAPI): every field is sent, and null clears one.
  patch() {
    return {
      laterality: this.laterality.value || null,
      bodySite: this.site,
      notes: this.notes.value.trim() || null,
    };
  }

  // savedWithCommit records that a commit carried the card's edits.
  savedWithCommit() {
    clearTimeout(this.saveTimer);
    this.dirty = false;
    this.setSave('Saved');
  }

  async saveNow() {
    const patch = this.patch();
    this.setSave('Saving…');
    try {
      const view = await this.grid.call(`/api/medtech/session/${enc(this.grid.sessionId)}/images/${enc(this.image.id)}`, {
        method: 'PATCH', body: patch,
      });
      this.image = { ...this.image, metadata: view?.metadata ?? patch };
      if (!this.dirty) this.setSave('Saved');
    } catch (err) {
      this.dirty = true; // keep it for the next flush
      this.setSave(`Not saved: ${err.message}`, 'error');
      clearTimeout(this.saveTimer);
      if (err.retryable) this.saveTimer = setTimeout(() => this.flush(), 3000);
    }
  }

  setSave(text, kind = '') {
    this.save.textContent = text;
    this.save.dataset.kind = kind;
  }

  async removeClicked() {
    if (!this.removeArmed) {
      this.removeBtn.textContent = 'Confirm remove';
      this.removeArmed = setTimeout(() => this.disarmRemove(), REMOVE_CONFIRM_MS);
      return;
    }
    this.disarmRemove();
    this.removeBtn.disabled = true;
    try {
      await this.grid.call(`/api/medtech/session/${enc(this.grid.sessionId)}/images/${enc(this.image.id)}`, { method: 'DELETE' });
      this.grid.remove(this.image.id);
    } catch (err) {
      this.removeBtn.disabled = false;
      if (err.status === 404) {
        this.grid.remove(this.image.id);
        return;
      }
      this.setSave(`Not removed: ${err.message}`, 'error');
    }
  }

  disarmRemove() {
    clearTimeout(this.removeArmed);
    this.removeArmed = 0;
    this.removeBtn.textContent = 'Remove';
  }

  destroy() {
    clearTimeout(this.saveTimer);
    clearTimeout(this.removeArmed);
    this.node.remove();
  }
}

// errorText renders a commit error, which the API gives as {code, message}
// and a stored commit state as a plain string.
function errorText(e) {
  if (!e) return 'filing failed';
  if (typeof e === 'string') return e;
  return e.message || e.code || 'filing failed';
}

function extension(contentType) {
  return { 'image/png': 'png', 'image/heic': 'heic', 'image/heif': 'heif' }[contentType] ?? 'jpg';
}

const enc = encodeURIComponent;
