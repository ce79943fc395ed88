// The phone page, opened from the desktop's QR code at /m/{token}. It
// claims the one-time token, asks the GP to confirm the patient, takes
// photos with the camera, lets the GP check them and add optional details,
// and sends them (phone-image.js shrinks and strips them, phone-upload.js
// uploads them).
//
// The claim answers with a mobileToken, the bearer credential for this
// session's uploads. A second claim of the same QR token is refused (410),
// so the mobileToken is kept in sessionStorage under a hash of the QR
// token: reloading the tab, or "Take more" after a reload, keeps working,
// while closing the tab forgets it. Nothing goes to localStorage and
// nothing is logged.
//
// Every screen shows the patient's name, NHI and date of birth
// (#patient-card). The phone checks its session with the server
// (phone-status.js) before adding photos and before sending them, and
// every 15 s while visible; what it can still send always comes from the
// server's `remaining`.
import { $, role, cloneTemplate, announce, uuid } from './dom.js';
import { api, ApiError } from './api.js';
import { prepareImage } from './phone-image.js';
import { uploadImage } from './phone-upload.js';
import { fillLateralitySelect, fillBodySiteSelect, bodySiteFromSelect } from './bodysites.js';
import { PhotoView, UndoToast, watchActionBar, UNDO_MS } from './phone-review.js';
import { fillPatient, patientQuestion } from './patient.js';
import { StatusWatch, Stop } from './phone-status.js';
import { PhonePresence } from './phone-presence.js';

const PARALLEL_UPLOADS = 2;

const qrToken = decodeURIComponent(location.pathname.split('/')[2] ?? '');
let storageKey = '';
// {sessionId, mobileToken, patientDisplay, patientNhi, patientDob,
//  maxImages, imageCount, remaining, expiresAt, confirmed, sent}
let session = null;
let items = [];
let sending = false;
let photoCounter = 0;
let pendingStop = null; // a Stop kind that arrived while sending
let retryAction = null; // the error screen's Try again

const photoView = new PhotoView();
const undoToast = new UndoToast();
watchActionBar($('#action-bar'));

// The desktop sees this page as "Phone connected" while it is open.
const presence = new PhonePresence({ getToken: () => session?.mobileToken ?? '' });

const camera = $('#camera');
const library = $('#library');
const status = new StatusWatch({
  getToken: () => session?.mobileToken ?? '',
  onView: (v) => applyView(v),
  onStop: (kind) => stopped(kind),
});
// The camera opens at once (a file input needs the tap's user activation);
// the status check runs meanwhile and is awaited before photos are added.
$('#take-photo').addEventListener('click', () => { status.check(); camera.click(); });
$('#choose-library').addEventListener('click', () => { status.check(); library.click(); });
$('#add-more').addEventListener('click', () => { status.check(); camera.click(); });
camera.addEventListener('change', () => filesChosen(camera));
library.addEventListener('change', () => filesChosen(library));
$('#confirm-yes').addEventListener('click', confirmed);
$('#confirm-no').addEventListener('click', declined);
$('#send').addEventListener('click', () => sendAll());
$('#take-more').addEventListener('click', () => showCapture());
$('#error-action').addEventListener('click', () => retryAction?.());
window.addEventListener('beforeunload', (e) => {
  if (items.some((it) => it.state !== 'sent')) e.preventDefault();
});

start();

async function start() {
  show('loading');
  if (!qrToken || qrToken.length > 512) {
    showError('unknown');
    return;
  }
  storageKey = `handoff.phone.${await digest(qrToken)}`;
  session = load();
  if (session?.mobileToken) {
    showPatientCard();
    if (!(await status.check() ?? true)) return;
    presence.enter(session.sessionId);
    if (session.confirmed) showCapture();
    else showConfirm();
    return;
  }
  await claim();
}

async function claim() {
  show('loading');
  let r;
  try {
    r = await api(`/api/medtech/session/tokens/${encodeURIComponent(qrToken)}`);
  } catch (err) {
    showClaimError(err);
    return;
  }
  session = {
    sessionId: r.sessionId,
    mobileToken: r.mobileToken,
    patientDisplay: r.patientDisplay ?? '',
    patientNhi: r.patientNhi ?? '',
    patientDob: r.patientDob ?? '',
    maxImages: r.maxImages ?? 20,
    imageCount: r.imageCount ?? 0,
    remaining: r.remaining ?? Math.max(0, (r.maxImages ?? 20) - (r.imageCount ?? 0)),
    expiresAt: r.expiresAt,
    confirmed: false,
    sent: 0,
  };
  save();
  presence.enter(session.sessionId);
  showPatientCard();
  showConfirm();
}

function patient() {
  return { name: session.patientDisplay, nhi: session.patientNhi, dob: session.patientDob };
}

function showPatientCard() {
  fillPatient($('#patient-card'), patient());
  $('#patient-card').hidden = false;
}

// applyView takes the server's word on the session: the patient it is for
// and how many more photos it takes.
function applyView(v) {
  session.patientDisplay = v.patientDisplay ?? session.patientDisplay;
  session.patientNhi = v.patientNhi ?? session.patientNhi;
  session.patientDob = v.patientDob ?? session.patientDob;
  session.maxImages = v.maxImages ?? session.maxImages;
  session.imageCount = v.imageCount ?? session.imageCount;
  session.remaining = v.remaining ?? 0;
  session.sent = 0; // the server's count includes them now
  save();
  showPatientCard();
  updateCaptureHint();
}

// stopped shows why this phone can send no more. Photos chosen and not
// sent are dropped with it: the screen says they were not sent. During a
// send it waits for the photos in flight to finish.
function stopped(kind) {
  if (sending) {
    pendingStop = kind;
    return;
  }
  const unsent = items.filter((it) => it.state !== 'sent').length;
  clearItems();
  showError(kind, null, unsent);
}

function showClaimError(err) {
  if (err.status === 404) showError('unknown');
  else if (err.code === 'token_superseded') showError('superseded');
  else if (err.code === 'token_expired') showError('stale');
  else if (err.status === 410) showError('used');
  else if (err.status === 429) showError('busy', () => claim());
  else showError('network', () => claim());
}

// showConfirm asks for an explicit match on name, NHI and date of birth.
// Focus goes to the question, never to Yes.
function showConfirm() {
  $('#confirm-question').textContent = patientQuestion(patient());
  $('#confirm-patient').textContent = session.patientDisplay || 'the patient';
  show('confirm');
}

function confirmed() {
  session.confirmed = true;
  save();
  showCapture();
}

// declined tells the server (which disconnects this phone and alerts the
// desktop) and forgets the session.
async function declined() {
  const btn = $('#confirm-no');
  btn.disabled = true;
  let told = true;
  try {
    await api('/api/medtech/session/mobile/reject', { method: 'POST', token: session.mobileToken });
  } catch (err) {
    told = err instanceof ApiError && err.code === 'phone_revoked';
  }
  btn.disabled = false;
  status.stop();
  presence.stop();
  forget();
  $('#patient-card').hidden = true;
  $('#declined-offline').hidden = told;
  show('declined');
}

// remaining is what the server says the session still takes, less the
// photos chosen here and not yet sent.
function remaining() {
  const server = session.remaining ?? Math.max(0, session.maxImages - session.imageCount - session.sent);
  return Math.max(0, server - items.filter((it) => it.state !== 'sent').length);
}

function updateCaptureHint() {
  const left = remaining();
  $('#capture-hint').textContent = `You can send up to ${left} more photo${left === 1 ? '' : 's'}.`;
}

async function showCapture() {
  clearItems();
  status.start();
  if ((await status.check()) === false) return;
  updateCaptureHint();
  if (remaining() === 0) {
    showError('full');
    return;
  }
  show('capture');
}

async function filesChosen(input) {
  const files = [...(input.files ?? [])];
  input.value = ''; // choosing the same photo again must fire change
  if (!files.length) return;
  if ((await status.check()) === false) return;
  const left = remaining();
  const take = files.slice(0, left);
  for (const f of take) addItem(f);
  show('review', false);
  renderReview();
  if (files.length > left) {
    announce(`Only ${left} more photo${left === 1 ? '' : 's'} fit in this session; the rest were left out.`);
    $('#review-hint').textContent = `Only ${left} more photo${left === 1 ? '' : 's'} fit in this session; the rest were left out.`;
  }
  prepareAll();
}

function addItem(file) {
  const node = cloneTemplate('review-item');
  const it = {
    imageId: uuid(),
    file,
    blob: null,
    url: '',
    state: 'preparing', // preparing | ready | uploading | registering | sent | failed
    error: '',
    progress: 0,
    node,
    number: ++photoCounter,
  };
  fillLateralitySelect(role(node, 'laterality'));
  fillBodySiteSelect(role(node, 'bodysite'));
  role(node, 'delete').addEventListener('click', () => removeItem(it));
  role(node, 'enlarge').addEventListener('click', () => photoView.open(it.url, `Photo ${it.number}`, role(node, 'enlarge')));
  role(node, 'retry').addEventListener('click', () => sendAll([it]));
  items.push(it);
  $('#review-list').append(node);
  renderItem(it);
}

// prepareAll shrinks the chosen photos one at a time: a phone has memory
// for one 12-megapixel decode, not six at once.
let preparing = false;
async function prepareAll() {
  if (preparing) return;
  preparing = true;
  try {
    for (let it = items.find((x) => x.state === 'preparing'); it; it = items.find((x) => x.state === 'preparing')) {
      try {
        const p = await prepareImage(it.file);
        it.blob = p.blob;
        it.url = URL.createObjectURL(p.blob);
        it.state = 'ready';
      } catch (err) {
        it.state = 'failed';
        it.error = err.message;
        it.unreadable = true;
      }
      it.file = null; // keep only the small copy
      renderItem(it);
      renderReview();
    }
  } finally {
    preparing = false;
  }
}

// removeItem takes a photo out of the list with an Undo (phone-review.js):
// the photo is kept until the undo has gone, so a slip never loses it.
function removeItem(it) {
  if (it.state === 'uploading' || it.state === 'registering' || it.state === 'sent') return;
  const index = items.indexOf(it);
  items = items.filter((x) => x !== it);
  it.node.remove();
  undoToast.offer(`Photo ${it.number} removed`, () => restoreItem(it, index), () => {
    if (it.url) URL.revokeObjectURL(it.url);
  });
  announce(`Photo ${it.number} removed. Undo for ${UNDO_MS / 1000} seconds.`);
  if (!items.length) showCapture();
  else renderReview();
}

// restoreItem puts a removed photo back where it was.
function restoreItem(it, index) {
  const at = Math.min(index, items.length);
  const list = $('#review-list');
  list.insertBefore(it.node, items[at]?.node ?? null);
  items.splice(at, 0, it);
  show('review', false);
  renderItem(it);
  renderReview();
  announce(`Photo ${it.number} restored`);
  role(it.node, 'delete').focus();
}

function clearItems() {
  if (items.length) undoToast.settle();
  for (const it of items) {
    if (it.url) URL.revokeObjectURL(it.url);
    it.node.remove();
  }
  items = [];
  photoCounter = 0;
  $('#review-hint').textContent = 'Details are optional; the GP can add them on the desktop.';
}

function metadataOf(it) {
  const laterality = role(it.node, 'laterality').value;
  const bodySite = bodySiteFromSelect(role(it.node, 'bodysite'));
  const notes = role(it.node, 'notes').value.trim();
  if (!laterality && !bodySite && !notes) return null;
  const m = {};
  if (laterality) m.laterality = laterality;
  if (bodySite) m.bodySite = bodySite;
  if (notes) m.notes = notes;
  return m;
}

const statusText = {
  preparing: 'Preparing…',
  ready: 'Ready to send',
  uploading: 'Sending…',
  registering: 'Almost done…',
  sent: '✓ Sent',
};

function renderItem(it) {
  const n = it.node;
  n.dataset.state = it.state;
  role(n, 'name').textContent = `Photo ${it.number}`;
  const img = role(n, 'img');
  if (it.url && img.getAttribute('src') !== it.url) {
    img.src = it.url;
    img.alt = `Photo ${it.number}`;
  }
  const status = role(n, 'status');
  if (it.state === 'failed') status.textContent = `Not sent: ${it.error}`;
  else if (it.state === 'uploading') status.textContent = `Sending… ${Math.round(it.progress * 100)}%`;
  else status.textContent = statusText[it.state] ?? '';
  const progress = role(n, 'progress');
  progress.hidden = it.state !== 'uploading' && it.state !== 'registering';
  progress.value = Math.round((it.state === 'registering' ? 1 : it.progress) * 100);
  progress.setAttribute('aria-label', `Photo ${it.number} upload progress`);
  const busy = it.state === 'uploading' || it.state === 'registering' || it.state === 'sent';
  role(n, 'delete').hidden = busy;
  role(n, 'delete').setAttribute('aria-label', `Delete photo ${it.number}`);
  role(n, 'enlarge').setAttribute('aria-label', `Enlarge photo ${it.number} to check focus`);
  role(n, 'enlarge').disabled = !it.url;
  role(n, 'retry').hidden = it.state !== 'failed' || it.unreadable || sending;
  for (const f of ['laterality', 'bodysite', 'notes']) role(n, f).disabled = busy;
  role(n, 'details').hidden = it.state === 'sent';
}

function renderReview() {
  const unsent = items.filter((it) => it.state !== 'sent' && !it.unreadable);
  const send = $('#send');
  send.disabled = sending || unsent.length === 0;
  send.textContent = sending ? 'Sending…' : `Send ${unsent.length} photo${unsent.length === 1 ? '' : 's'}`;
  $('#add-more').hidden = sending || remaining() === 0;
  $('#review-title').textContent = sending ? 'Sending photos' : 'Check photos';
}

// sendAll uploads the unsent photos (or just `only`), two at a time.
async function sendAll(only) {
  if (sending) return;
  const queue = (only ?? items).filter((it) => it.state !== 'sent' && !it.unreadable);
  if (!queue.length) return;
  undoToast.settle(); // a photo removed before Send stays removed
  if ((await status.check()) === false) return;
  sending = true;
  for (const it of queue) {
    it.state = it.blob ? 'ready' : 'preparing';
    it.error = '';
    renderItem(it);
  }
  renderReview();
  announce(`Sending ${queue.length} photo${queue.length === 1 ? '' : 's'}`);
  let fatal = null;
  const next = () => (fatal ? null : queue.shift());
  const worker = async () => {
    for (let it = next(); it; it = next()) {
      const err = await sendOne(it);
      if (err && isFatal(err)) fatal = err;
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_UPLOADS }, worker));
  sending = false;
  items.forEach(renderItem);
  renderReview();
  afterSend(fatal);
}

async function sendOne(it) {
  while (it.state === 'preparing') await new Promise((r) => setTimeout(r, 100));
  if (it.state === 'failed') return null;
  try {
    await uploadImage({ imageId: it.imageId, blob: it.blob, metadata: metadataOf(it) }, {
      mobileToken: session.mobileToken,
      onPhase: (phase) => { it.state = phase; renderItem(it); },
      onProgress: (f) => { it.progress = f; renderItem(it); },
    });
    it.state = 'sent';
    session.sent++;
    session.remaining = Math.max(0, (session.remaining ?? 0) - 1);
    save();
    renderItem(it);
    return null;
  } catch (err) {
    it.state = 'failed';
    it.error = err.message;
    renderItem(it);
    return err;
  }
}

// isFatal: errors after which no other photo can succeed either.
function isFatal(err) {
  return err instanceof ApiError && (err.code === 'too_many_images' || err.code === 'session_closed' ||
    err.status === 401 || err.status === 404 || err.status === 410);
}

async function afterSend(fatal) {
  const sent = items.filter((it) => it.state === 'sent').length;
  if (pendingStop) {
    const kind = pendingStop;
    pendingStop = null;
    stopped(kind);
    return;
  }
  if (fatal) {
    if (fatal.code === 'too_many_images') showError('full');
    else if (fatal.code === 'phone_revoked') stopped(Stop.REVOKED);
    // The server says why: filed, expired, or the desktop moved on.
    else if ((await status.check()) !== false) stopped(Stop.EXPIRED);
    return;
  }
  const failed = items.filter((it) => it.state === 'failed' && !it.unreadable);
  if (!failed.length) {
    // "On the GP's desktop now" only while the desktop still shows this
    // session: the check also refreshes what is left.
    const open = await status.check();
    if (open === false) return;
    $('#done-title').textContent = `${sent} photo${sent === 1 ? '' : 's'} sent`;
    $('#done-text').textContent = open
      ? `They are on the GP's desktop now, for ${session.patientDisplay || 'this patient'}.`
      : `They were sent for ${session.patientDisplay || 'this patient'}.`;
    $('#take-more').hidden = remaining() === 0;
    show('done');
    announce(`${sent} photo${sent === 1 ? '' : 's'} sent`);
    return;
  }
  if (failed.every((it) => /network|interrupted|stalled|reach/i.test(it.error)) && sent === 0) {
    showError('network', () => { show('review', false); sendAll(); });
    return;
  }
  announce(`${failed.length} photo${failed.length === 1 ? '' : 's'} not sent. Use Retry to try again.`);
}

// The desktop's buttons, named as the desktop names them: "New code" while
// it shows a code, "Add another phone" once a phone is connected.
const NEW_CODE = 'On the desktop, press "New code" (or "Add another phone") and scan the new code';

const errors = {
  unknown: ['This code is not valid', 'Scan the QR code on the desktop again, or ask for a new code.'],
  used: ['This code has already been used', `Each code works once. ${NEW_CODE}.`],
  stale: ['This code has expired', `Codes work for a few minutes. ${NEW_CODE}.`],
  superseded: ['This code was replaced', 'The desktop shows a newer code. Scan that one instead.'],
  expired: ['This photo session has ended', `It can take no more photos. ${NEW_CODE} to send more.`],
  committed: ['These photos have been filed', `The GP has filed this session to the patient's record. ${NEW_CODE} to send more.`],
  closed: ['The GP\'s desktop has moved on', 'The desktop now shows another patient, so this phone no longer sends photos for the patient above. Ask the GP to reopen this patient\'s record and show a new code.'],
  revoked: ['This phone has been disconnected', `It can no longer send photos to this session. ${NEW_CODE} to connect again.`],
  full: ['This session is full', 'It already has as many photos as it can take. File them on the desktop, then start a new session for more.'],
  network: ['No connection', 'The phone could not reach the practice server. Check Wi-Fi or mobile data and try again.'],
  busy: ['Too many attempts', 'Wait a minute, then try again.'],
};

// Screens after which this phone's claim is no use: it is forgotten.
const FINAL = ['expired', 'unknown', 'used', 'stale', 'superseded', 'committed', 'revoked'];

function showError(kind, retry, unsent = 0) {
  const [title, text] = errors[kind];
  $('#error-title').textContent = title;
  $('#error-text').textContent = unsent > 0
    ? `${text} ${unsent} photo${unsent === 1 ? ' was' : 's were'} not sent.`
    : text;
  $('#error-action').hidden = !retry;
  retryAction = retry ?? null;
  if (FINAL.includes(kind) || kind === 'closed') {
    status.stop();
    presence.stop();
  }
  if (FINAL.includes(kind)) forget();
  show('error');
}

function show(name, focus = true) {
  for (const s of document.querySelectorAll('[data-screen]')) s.hidden = s.dataset.screen !== name;
  const h1 = document.querySelector(`[data-screen="${name}"] h1`);
  if (focus) h1?.focus();
  window.scrollTo(0, 0);
}

// Storage: sessionStorage only, keyed by a hash of the spent QR token.
function load() {
  try {
    return JSON.parse(sessionStorage.getItem(storageKey) ?? 'null');
  } catch {
    return null;
  }
}

function save() {
  try { sessionStorage.setItem(storageKey, JSON.stringify(session)); } catch { /* private mode: memory only */ }
}

function forget() {
  try { sessionStorage.removeItem(storageKey); } catch { /* ignore */ }
}

async function digest(text) {
  const data = new TextEncoder().encode(text);
  if (globalThis.crypto?.subtle) {
    const h = new Uint8Array(await crypto.subtle.digest('SHA-256', data));
    return [...h.slice(0, 16)].map((b) => b.toString(16).padStart(2, '0')).join('');
  }
  // Plain http on a LAN has no SubtleCrypto. The token is spent once
  // claimed, so a non-cryptographic hash (FNV-1a) is enough to avoid
  // writing it down verbatim.
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const b of data) {
    h1 = Math.imul(h1 ^ b, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ b, 0x5bd1e995) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}
