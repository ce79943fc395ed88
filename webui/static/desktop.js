// The desktop widget: gets its context (desktop-auth.js), creates the
// capture session and shows its QR code (desktop-pairing.js), follows the
// session channel live (realtime.js) into the photo grid
// (desktop-photos.js), and files the photos to the record (commit).
//
// Consistency: the grid starts from a snapshot and subscribes from the
// snapshot's cursor, so every event after it is replayed in order. When
// the server cannot replay (recovered:false, resync), the page refetches
// the snapshot and resubscribes from its new cursor.
//
// Trust: an event says something happened; only the snapshot (an
// authenticated read of the session) says what is true. Before the page
// shows a photo as filed, locks it, or ends the session, it re-reads the
// snapshot and acts on that (verify), so a forged image.committed,
// session.committed or session.expired on the channel changes nothing.
import { $, announce } from './dom.js';
import { formatDob } from './patient.js';
import { api } from './api.js';
import { DesktopAuth } from './desktop-auth.js';
import { Expiry, downloadPhotos } from './desktop-expiry.js';
import { Pairing } from './desktop-pairing.js';
import { missingPatient, refuseStart, showPatient, fileLabel, PhoneAlert } from './desktop-patient.js';
import { PhotoGrid } from './desktop-photos.js';
import { confirmNoSite } from './desktop-sites.js';
import { RealtimeClient, State } from './realtime.js';
import { watchHeight } from './sticky-bars.js';

const body = document.body;
const auth = new DesktopAuth({
  dev: body.dataset.dev === 'true',
  hostOrigins: (body.dataset.hostOrigins || '').split(/\s+/).filter(Boolean),
});

const app = {
  ctx: null,
  sessionId: '',
  channel: '',
  rt: null,
  sub: null,
  resyncing: null,
  resyncAgain: false,
  commitsInFlight: 0,
  expired: false,
  verifying: null,
  verifyAgain: false,
};

const pairing = new Pairing({
  onNewCode: () => newCode(),
  fetchImage: async (url) => {
    const res = await fetch(url, { headers: { Authorization: `Bearer ${auth.token}` }, cache: 'no-store' });
    if (!res.ok) throw new Error(`QR ${res.status}`);
    return res.blob();
  },
});

const photos = new PhotoGrid({
  call: (path, opts) => auth.call(path, opts),
  onChange: () => renderCommitBar(),
  onRetry: (id) => fileAsked([id]),
  onCancel: (id) => cancelFiling([id]),
  onStale: throttle(() => resync(), 10000),
});

const phoneAlert = new PhoneAlert();
const expiry = new Expiry({
  onRefresh: () => verify(),
  onDownload: () => downloadUnfiled(),
  onDue: throttle(() => verify(), 10000),
});

// Memory mode: say plainly that a restart loses unfiled photos.
$('#volatile').hidden = body.dataset.volatileSessions !== 'true';

// The sticky top bar and File bar never hide a card's controls: their
// heights set the page's scroll-padding (desktop.css).
watchHeight($('.topbar'), '--topbar-h');
watchHeight($('#commit-bar'), '--commit-bar-h');

const conn = $('#conn');
const connText = $('#conn-text');
const commitBtn = $('#commit');
const commitBar = $('#commit-bar');
const commitSummary = $('#commit-summary');
commitBtn.addEventListener('click', () => fileAsked());

// fileAsked files ids (all unfiled photos when none: the File button; one
// photo: its Retry), first asking about any without a body site
// (desktop-sites.js). Every way to file comes through here, so no photo is
// filed without a site unless the GP chose to.
async function fileAsked(ids) {
  if (await confirmNoSite(photos.withoutSite(ids ?? photos.unfiledIds()))) commit(ids);
}

main().catch((err) => showBanner(`Something went wrong: ${err.message}`, 'error'));

// main gets the context from the URL fragment, else from the host's
// postMessage (and, in dev mode, from whichever comes first of that and the
// demo form), then starts.
async function main() {
  let ctx = auth.fromFragment();
  if (!ctx) {
    const fromHost = auth.waitForHost();
    $('#waiting').hidden = auth.dev;
    ctx = await (auth.dev ? Promise.race([fromHost, devForm()]) : fromHost);
    $('#waiting').hidden = true;
    $('#dev-form').hidden = true;
  }
  await start(ctx);
}

// devForm lets a developer pick a demo patient (dev mode only).
async function devForm() {
  const form = $('#dev-form');
  const select = $('#dev-patient');
  const error = $('#dev-error');
  form.hidden = false;
  let patients = [];
  try {
    patients = await api('/api/dev/patients');
  } catch (err) {
    error.textContent = `Could not load the demo patients: ${err.message}`;
    error.hidden = false;
  }
  for (const p of patients) select.append(new Option(`${p.display} · NHI ${p.nhi} · born ${formatDob(p.dob)} · ${p.encounterId}`, p.patientId));
  return new Promise((resolve) => {
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const p = patients.find((x) => x.patientId === select.value);
      if (!p) return;
      const btn = $('#dev-start');
      btn.disabled = true;
      error.hidden = true;
      try {
        const ctx = await auth.devLogin(p);
        form.hidden = true;
        resolve(ctx);
      } catch (err) {
        error.textContent = `Could not start: ${err.message}`;
        error.hidden = false;
        btn.disabled = false;
      }
    });
  });
}

async function start(ctx) {
  app.ctx = ctx;
  showPatient(ctx);
  const missing = missingPatient(ctx);
  if (missing) {
    refuseStart(missing);
    return;
  }
  app.rt = new RealtimeClient({
    getToken: () => auth.token,
    onAuthError: () => auth.refresh(),
    onState: (state, detail) => {
      showConnection(state, detail);
      if (state === State.LIVE) scheduleTokenRefresh(detail.expiresAt);
    },
    onAuthenticated: (f) => scheduleTokenRefresh(f.expiresAt),
  });
  auth.onToken = (token) => app.rt.updateToken(token);
  await newCode();
  app.rt.connect();
}

// scheduleTokenRefresh asks for a fresh JWT a minute before the socket's
// token expires and hands it to the open socket, so a long consultation
// never sees the socket closed for an expired token.
let refreshTimer = 0;
function scheduleTokenRefresh(expiresAt) {
  clearTimeout(refreshTimer);
  const at = Date.parse(expiresAt);
  if (!at) return;
  const delay = Math.max(5000, at - Date.now() - 60000);
  refreshTimer = setTimeout(async () => {
    const fresh = await auth.refresh();
    if (fresh) app.rt.updateToken(fresh);
  }, Math.min(delay, 2 ** 31 - 1));
}

// newCode creates (or reuses) the session for this encounter and mints a
// fresh QR token. The server may answer with a different session (the old
// one was filed or expired); the page then follows the new one.
async function newCode() {
  const c = app.ctx;
  const req = { encounterId: c.encounterId, patientId: c.patientId };
  if (c.patientNhi) req.patientNhi = c.patientNhi;
  if (c.patientDisplay) req.patientDisplay = c.patientDisplay;
  if (c.patientDob) req.patientDob = c.patientDob;
  if (c.providerId) req.providerId = c.providerId;
  let code;
  try {
    code = await auth.call('/api/medtech/session/tokens', { method: 'POST', body: req });
  } catch (err) {
    showBanner(`Could not create a code: ${err.message}`, 'error', 'Try again', () => newCode(), 'code');
    return;
  }
  hideBanner('code');
  pairing.show(code);
  if (code.sessionId !== app.sessionId) {
    await followSession(code.sessionId, code.channel || `session:${code.sessionId}`);
  }
}

async function followSession(sessionId, channel) {
  app.sub?.unsubscribe();
  app.sub = null;
  app.sessionId = sessionId;
  app.channel = channel;
  // The session id is no secret (the page's API calls carry it); the
  // browser tests read it here.
  body.dataset.sessionId = sessionId;
  app.expired = false;
  hideBanner('ended');
  photos.reset(sessionId);
  pairing.resetPresence();
  expiry.reset();
  commitBar.hidden = false;
  await resync();
}

// follow subscribes to the session channel from cursor, or restarts the
// subscription there.
function follow(cursor) {
  if (app.sub) {
    app.sub.resubscribe(cursor);
    return;
  }
  app.sub = app.rt.subscribe(app.channel, {
    since: cursor,
    presence: true,
    onMembers: (members) => pairing.setPresentPhones(presentPhones(members)),
    onEvent: onEvent,
    onResync: () => resync(),
    onError: (f) => {
      if (f.code === 'not_found' || f.code === 'session_not_found' || f.code === 'forbidden') sessionEnded();
    },
  });
}

// presentPhones counts the phones among a channel's presence members. A
// phone whose socket dropped and came back is briefly two members (the old
// one leaves after the server's grace) with one clientId: count clientIds.
function presentPhones(members) {
  return new Set(members.filter((m) => m.clientId.startsWith('phone:')).map((m) => m.clientId)).size;
}

async function fetchSnapshot() {
  try {
    return await auth.call(`/api/medtech/session/${encodeURIComponent(app.sessionId)}`);
  } catch (err) {
    if (err.status === 404 || err.status === 410) {
      sessionEnded();
      return null;
    }
    showBanner(`Could not load the photos: ${err.message}`, 'error', 'Retry', () => resync(), 'snapshot');
    return null;
  }
}

function applySnapshot(snap) {
  photos.applySnapshot(snap.images);
  if (snap.mobileConnected) pairing.markConnected();
  expiry.update({ deleteAt: snap.deleteAt ?? snap.expiresAt });
  if (snap.status === 'expired') sessionEnded();
}

// resync refetches the snapshot and resubscribes from its cursor. Calls
// while one runs fold into one more run after it.
function resync() {
  if (!app.sessionId) return Promise.resolve();
  if (app.resyncing) {
    app.resyncAgain = true;
    return app.resyncing;
  }
  app.resyncing = (async () => {
    do {
      app.resyncAgain = false;
      const snap = await fetchSnapshot();
      if (!snap) break;
      hideBanner('snapshot');
      applySnapshot(snap);
      follow(snap.cursor);
    } while (app.resyncAgain);
  })().finally(() => { app.resyncing = null; });
  return app.resyncing;
}

function onEvent(ev) {
  const d = ev.data ?? {};
  const imageId = d.imageId ?? d.id ?? d.image?.id;
  switch (ev.type) {
    case 'mobile.connected':
      // The code was claimed; "Phone connected" follows presence.
      pairing.markConnected();
      announce('Code scanned');
      break;
    case 'mobile.rejected':
      // The phone is already disconnected; the snapshot says whether
      // another phone still is.
      pairing.markDisconnected();
      phoneAlert.show();
      resync();
      break;
    case 'image.added':
    case 'image.updated':
      // A new photo shows as not filed whatever the event claims; its
      // filing state only ever comes from a snapshot or a commit reply.
      photos.upsert(withoutCommit(d.image ?? d));
      break;
    case 'image.removed':
      photos.remove(imageId);
      break;
    case 'image.committed':
    case 'session.committed':
    case 'session.expired':
      verify();
      break;
    case 'image.commit_failed':
      photos.setCommit(imageId, { status: 'failed', error: d.error ?? d.commit?.error });
      break;
    default:
      break;
  }
}

// withoutCommit drops an event's claim about an image's filing state.
function withoutCommit(image) {
  if (!image || typeof image !== 'object') return image;
  const { commit: _ignored, ...rest } = image;
  return rest;
}

// verify re-reads the snapshot after an event that would file, lock or
// end something, and applies what the snapshot says: filing states
// (without pruning: live events may be newer than it) and whether the
// session has ended (a 404 or 410, or status expired). Calls while one
// runs fold into one more run after it, so a burst of events costs two
// reads at most.
function verify() {
  if (app.verifying) {
    app.verifyAgain = true;
    return app.verifying;
  }
  app.verifying = (async () => {
    do {
      app.verifyAgain = false;
      await settleFromSnapshot();
    } while (app.verifyAgain);
  })().finally(() => { app.verifying = null; });
  return app.verifying;
}

// settleFromSnapshot updates filing states from a fresh snapshot without
// pruning: live events may already be newer than it. A session the
// server no longer has, or has expired, has ended.
async function settleFromSnapshot() {
  if (!app.sessionId) return;
  const sessionId = app.sessionId;
  let snap;
  try {
    snap = await auth.call(`/api/medtech/session/${encodeURIComponent(sessionId)}`);
  } catch (err) {
    if ((err.status === 404 || err.status === 410) && sessionId === app.sessionId) sessionEnded();
    return; // otherwise the next event or resync settles it
  }
  if (sessionId !== app.sessionId) return; // the page moved on meanwhile
  photos.applySnapshot(snap.images, { prune: false });
  expiry.update({ deleteAt: snap.deleteAt ?? snap.expiresAt });
  if (snap.status === 'expired') sessionEnded();
}

// sessionEnded: the server no longer has the session (expired, swept, or
// lost in a restart). Every action on it is disabled and the page says
// why; the one action offered is a new session.
function sessionEnded() {
  if (app.expired) return;
  app.expired = true;
  pairing.stop();
  photos.end();
  expiry.end();
  renderCommitBar();
  const lost = photos.counts().total - photos.counts().committed;
  const text = lost > 0
    ? `This photo session has ended (it expired, or the server no longer has it). ${lost} photo${lost === 1 ? ' was' : 's were'} not filed and ${lost === 1 ? 'has' : 'have'} been deleted; they cannot be filed now.`
    : 'This photo session has ended.';
  showBanner(text, 'warn', 'Start a new session', () => newCode(), 'ended');
}

// commit files images to the record: all unfiled ones, or ids (Retry).
// Requests for different photos may run side by side: a photo still filing
// in the background never holds up the others. Every request names its
// photos, so it never waits on one another request is filing.
async function commit(ids) {
  if (app.expired) return;
  const target = (ids ?? photos.unfiledIds()).filter((id) => photos.cards.get(id)?.commitStatus !== 'committing');
  if (!target.length) return;
  photos.markCommitting(target);
  app.commitsInFlight++;
  renderCommitBar();
  try {
    await photos.flushEdits();
    const req = { sessionId: app.sessionId, imageIds: target };
    const unsaved = photos.unsavedEdits(target);
    if (Object.keys(unsaved).length) req.metadata = unsaved;
    let res;
    try {
      res = await auth.call('/api/medtech/session/commit', { method: 'POST', body: req });
    } catch (err) {
      if (err.status === 404 && err.code === 'session_not_found') {
        sessionEnded();
        return;
      }
      const error = { code: err.code, message: err.message, nextStep: 'Press Retry.' };
      for (const id of target) photos.setCommit(id, { status: 'failed', error });
      announce(`Filing failed: ${err.message}`);
      return;
    }
    photos.markSaved(Object.keys(unsaved));
    const seen = new Set();
    for (const r of res?.results ?? []) {
      seen.add(r.imageId);
      photos.setCommit(r.imageId, { status: r.status, alexId: r.alexId, error: r.error, background: r.status === 'committing' });
    }
    if (target.some((id) => !seen.has(id))) await settleFromSnapshot();
    const n = photos.counts();
    if (n.background) announce(`${n.background} photo${n.background === 1 ? ' is' : 's are'} still filing in the background.`);
    else announce(n.failed ? `${n.failed} photo${n.failed === 1 ? '' : 's'} could not be filed.` : 'Photos filed to the record.');
  } finally {
    app.commitsInFlight--;
    renderCommitBar();
  }
}

// cancelFiling stops the background filing of ids. Each photo's outcome
// still comes by event: cancelled (Retry), or filed if its attempt had
// already reached Medtech.
async function cancelFiling(ids) {
  try {
    const res = await auth.call('/api/medtech/session/commit/cancel', { method: 'POST', body: { sessionId: app.sessionId, imageIds: ids } });
    if (res?.notRunning?.length) await settleFromSnapshot();
  } catch (err) {
    if (err.status === 404 && err.code === 'session_not_found') {
      sessionEnded();
      return;
    }
    announce(`Could not cancel: ${err.message}`);
    await settleFromSnapshot();
  }
}

// downloadUnfiled saves every photo not filed yet to this computer: the
// last resort before the session's photos are deleted.
async function downloadUnfiled() {
  const list = photos.unfiledPhotos();
  if (!list.length) return;
  const btn = $('#download-unfiled');
  btn.disabled = true;
  const failed = await downloadPhotos(list);
  btn.disabled = false;
  announce(failed
    ? `${failed} of ${list.length} photos could not be downloaded.`
    : `${list.length} photo${list.length === 1 ? '' : 's'} downloaded.`);
  if (failed) resync();
}

function renderCommitBar() {
  const n = photos.counts();
  const unfiled = n.pending + n.failed;
  expiry.update({ unfiled: unfiled + n.committing });
  commitBtn.disabled = unfiled === 0 || app.expired;
  commitBtn.textContent = unfiled > 0 ? fileLabel(unfiled, app.ctx) : 'File to record';
  commitSummary.classList.remove('done');
  if (app.expired) {
    commitBtn.textContent = 'Session ended';
    commitSummary.textContent = 'This session has ended; nothing on it can be filed.';
  } else if (n.total === 0) {
    commitSummary.textContent = 'Waiting for photos from the phone.';
  } else if (n.background > 0 && n.background === n.committing) {
    commitSummary.textContent = `Still filing ${n.background} photo${n.background === 1 ? '' : 's'} in the background…`;
  } else if (n.committing > 0) {
    commitSummary.textContent = `Filing ${n.committing} photo${n.committing === 1 ? '' : 's'}…`;
  } else if (n.committed === n.total) {
    commitSummary.textContent = `✓ All ${n.total} photo${n.total === 1 ? '' : 's'} filed to the record.`;
    commitSummary.classList.add('done');
  } else if (n.failed > 0) {
    commitSummary.textContent = `${n.failed} not filed. Check the reason on each photo, then press Retry.`;
  } else if (n.committed > 0) {
    commitSummary.textContent = `${n.committed} of ${n.total} filed.`;
  } else if (n.noSite > 0) {
    commitSummary.textContent = `${n.total} photo${n.total === 1 ? '' : 's'} ready; ${n.noSite} without a body site.`;
  } else {
    commitSummary.textContent = `${n.total} photo${n.total === 1 ? '' : 's'} ready to file.`;
  }
}

const connLabels = {
  [State.CONNECTING]: 'Connecting…',
  [State.LIVE]: 'Live',
  [State.RECONNECTING]: 'Reconnecting…',
  [State.OFFLINE]: 'Offline',
  [State.CLOSED]: 'Not connected',
};

function showConnection(state, detail = {}) {
  conn.hidden = false;
  conn.dataset.state = state;
  connText.textContent = connLabels[state] ?? state;
  conn.title = state === State.LIVE ? 'Photos appear here as soon as the phone sends them.' : '';
  if (state === State.OFFLINE && (detail.reason === 'auth' || detail.reason === 'forbidden')) {
    showBanner('Your sign-in has expired. Reopen the widget from the patient record.', 'error',
      auth.dev ? 'Reconnect' : null, () => app.rt.reconnectNow(), 'auth');
  } else if (state === State.LIVE) {
    hideBanner('auth');
  }
}

let bannerAction = null;
let bannerTopic = '';
$('#banner-action').addEventListener('click', () => bannerAction?.());

// showBanner shows one message at the top; topic names what it is about,
// so hideBanner(topic) clears it only once that problem is solved.
function showBanner(text, kind = 'warn', actionLabel = null, action = null, topic = '') {
  bannerTopic = topic;
  const b = $('#banner');
  $('#banner-text').textContent = text;
  b.dataset.kind = kind;
  const btn = $('#banner-action');
  btn.hidden = !actionLabel;
  btn.textContent = actionLabel ?? '';
  bannerAction = action;
  b.hidden = false;
}

function hideBanner(topic) {
  if (topic && topic !== bannerTopic) return;
  $('#banner').hidden = true;
  bannerAction = null;
  bannerTopic = '';
}

function throttle(fn, ms) {
  let last = 0;
  return () => {
    const now = Date.now();
    if (now - last < ms) return;
    last = now;
    fn();
  };
}
