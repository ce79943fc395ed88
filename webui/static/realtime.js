// RealtimeClient speaks handoff's native WebSocket protocol from a browser
// (the Go package protocol/ is its source of truth; docs/protocol.md
// explains it), and mirrors the Go client in client/:
// one socket carrying several channels, reconnect with jittered exponential
// backoff, resume of every channel from the last event id it received,
// de-duplication of events by id, and an explicit resync signal when the
// server cannot replay (recovered:false, or a resync frame), so the app
// refetches its snapshot instead of silently missing events.
//
// Frames (JSON text):
//   client → server  {type:"auth", token}  {type:"subscribe", channel, since?, presence?, id?}
//                    {type:"unsubscribe", channel, id?}  {type:"ping", id?}
//                    {type:"presence", channel, action, data?, id?}
//   server → client  connected {connectionId, heartbeat, expiresAt}
//                    authenticated {ref, expiresAt}
//                    subscribed {ref, channel, recovered, cursor, presence?}
//                    presence {channel, action, member: {clientId, connectionId, data, ts}}
//                    ack {ref, channel}
//                    unsubscribed {ref, channel}
//                    event {event: {id, channel, type, data, ts}}
//                    resync {channel, recovered:false, cursor}
//                    error {ref?, channel?, code, message}
//                    pong {ref}
//
// Presence: enterPresence(channel, data) makes this socket a member of the
// channel, and keeps it one: every new socket (a reconnect has a new
// connectionId) enters again, until leavePresence or close. A subscription
// made with {presence: true} keeps the channel's members and hands the
// whole list to onMembers whenever it changes.
//
// The token goes in the first frame ({type:"auth"}), not in the URL: the
// server also accepts an access_token query parameter, but a URL ends up in
// proxies' access logs and in the browser's own console messages about a
// failed socket. It is never logged here and never stored.

export const State = Object.freeze({
  CONNECTING: 'connecting',
  LIVE: 'live',
  RECONNECTING: 'reconnecting',
  OFFLINE: 'offline',
  CLOSED: 'closed',
});

// The protocol's wire names and codes, copied from the Go package
// protocol/ (protocol/protocol.go), which is the source of truth:
// protocol/browser_test.go fails when these tables differ from it, or when
// code below spells a frame type, op, error code or close code literally
// instead of naming it here.
export const PATH = '/realtime';

// Op is the type of a client → server frame.
export const Op = Object.freeze({
  AUTH: 'auth',
  SUBSCRIBE: 'subscribe',
  UNSUBSCRIBE: 'unsubscribe',
  PING: 'ping',
  PRESENCE: 'presence',
});

// PresenceAction is what a presence frame asks for or reports.
export const PresenceAction = Object.freeze({
  ENTER: 'enter',
  UPDATE: 'update',
  LEAVE: 'leave',
});

// Frame is the type of a server → client frame.
export const Frame = Object.freeze({
  CONNECTED: 'connected',
  AUTHENTICATED: 'authenticated',
  SUBSCRIBED: 'subscribed',
  UNSUBSCRIBED: 'unsubscribed',
  EVENT: 'event',
  RESYNC: 'resync',
  ERROR: 'error',
  PONG: 'pong',
  ACK: 'ack',
  PRESENCE: 'presence',
});

// Close is every close code the server uses (the table in protocol/).
export const Close = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  UNAUTHORIZED: 4001,
  FORBIDDEN: 4003,
  SLOW_CONSUMER: 4008,
  TOKEN_EXPIRED: 4009,
  BAD_REQUEST: 4400,
});

// ErrorCode is the code of an error frame.
export const ErrorCode = Object.freeze({
  INVALID_JSON: 'invalid_json',
  INVALID_FRAME: 'invalid_frame',
  UNKNOWN_TYPE: 'unknown_type',
  BAD_CHANNEL: 'bad_channel',
  BAD_CURSOR: 'bad_cursor',
  ALREADY_SUBSCRIBED: 'already_subscribed',
  NOT_SUBSCRIBED: 'not_subscribed',
  TOO_MANY_CHANNELS: 'too_many_channels',
  FORBIDDEN: 'forbidden',
  NOT_FOUND: 'not_found',
  UNAVAILABLE: 'unavailable',
  UNAUTHORIZED: 'unauthorized',
  TOKEN_EXPIRED: 'token_expired',
});

// How many event ids each channel remembers for de-duplication: more than a
// replay can overlap with what was already delivered live.
const SEEN_IDS = 1000;

// After this many auth closes in a row (without a socket getting as far as
// "connected"), the client stops and reports offline: the server refuses
// whatever token the app supplies. The Go client uses the same limit.
const MAX_AUTH_FAILURES = 3;

// Heartbeat defaults. A ping every 4 s costs a desktop one small frame and
// its pong each way; silence for 10 s (two pings and more unanswered) means
// the path is dead. The issue asks for a dead socket to show within about
// 10 s; the server's own heartbeat (25 s, protocol.go) stays as it is, as
// these pings give the browser the traffic it listens for.
const DEFAULT_PING_INTERVAL_MS = 4000;
const DEFAULT_DEAD_AFTER_MS = 10000;

export class RealtimeClient {
  // options:
  //   getToken()          -> token or Promise<token> (called on every connect)
  //   onAuthError(code)   -> Promise<fresh token | null>; called on close
  //                          4001/4009. null (or no callback) stops the client.
  //   onState(state, detail)  connection state changes
  //   onError(frame)      error frames that name no subscription
  //   onAuthenticated(frame)  a token given with updateToken was accepted
  //   url                 socket URL (default: ws(s)://<this host>/realtime)
  //   minBackoff, maxBackoff  reconnect delays in ms (500, 15000)
  //   pingInterval        ms between application pings (4000)
  //   deadAfter           ms of silence from the server after which the
  //                       socket is dropped and redialled, and the longest
  //                       a new socket may take to be authenticated (10000)
  //   WebSocket           constructor (tests)
  constructor(options) {
    this.getToken = options.getToken;
    this.onAuthError = options.onAuthError;
    this.onState = options.onState ?? (() => {});
    this.onError = options.onError ?? (() => {});
    this.onAuthenticated = options.onAuthenticated;
    this.url = options.url ?? defaultURL();
    this.minBackoff = options.minBackoff ?? 500;
    this.maxBackoff = options.maxBackoff ?? 15000;
    this.pingInterval = options.pingInterval ?? DEFAULT_PING_INTERVAL_MS;
    this.deadAfter = options.deadAfter ?? DEFAULT_DEAD_AFTER_MS;
    this.WS = options.WebSocket ?? globalThis.WebSocket;

    this.state = State.CLOSED;
    this.ws = null;
    this.subs = new Map(); // channel -> Subscription
    this.attempt = 0;
    this.authFailures = 0;
    this.nextRef = 1;
    this.heartbeatMs = 25000;
    this.lastSeen = 0;
    this.lastPing = 0;
    this.timers = { reconnect: 0, heartbeat: 0, connect: 0 };
    this.stopped = true;
    this.connectionId = '';
    this.present = new Map(); // channel -> data this socket is present with
    this.presenceOps = new Map(); // ref -> channel, for retries after unavailable

    this.handleOnline = () => { if (!this.stopped && !this.isOpen()) this.reconnectNow(); };
    this.handleOffline = () => { if (!this.stopped) this.dropSocket('browser offline', State.OFFLINE); };
    this.handleVisible = () => {
      if (document.visibilityState === 'visible' && !this.stopped && !this.isOpen()) this.reconnectNow();
    };
  }

  // connect opens the socket; it keeps reconnecting until close().
  connect() {
    if (!this.stopped) return;
    this.stopped = false;
    globalThis.addEventListener?.('online', this.handleOnline);
    globalThis.addEventListener?.('offline', this.handleOffline);
    globalThis.document?.addEventListener('visibilitychange', this.handleVisible);
    this.open();
  }

  // close ends the socket for good.
  close() {
    this.stopped = true;
    globalThis.removeEventListener?.('online', this.handleOnline);
    globalThis.removeEventListener?.('offline', this.handleOffline);
    globalThis.document?.removeEventListener('visibilitychange', this.handleVisible);
    this.clearTimers();
    if (this.ws) {
      const ws = this.ws;
      // Say so first: the close frame that follows ends the membership
      // too, but a leave is explicit and arrives even if the close does not.
      if (this.isLive()) for (const channel of this.present.keys()) this.sendPresence(channel, PresenceAction.LEAVE);
      this.detach(ws);
      this.ws = null;
      try { ws.close(Close.NORMAL, 'client closed'); } catch { /* already closed */ }
    }
    this.presenceOps.clear();
    this.setState(State.CLOSED);
  }

  // subscribe adds channel. handlers: onEvent(event), onResync({cursor,
  // reason}), onSubscribed({recovered, cursor}), onError(frame). since is
  // the last cursor the app has seen (e.g. its snapshot's cursor).
  // With presence: true it also keeps the channel's members: onMembers(list
  // of {clientId, connectionId, data, ts}) after every subscribe and change.
  subscribe(channel, { since = '', presence = false, ...handlers } = {}) {
    if (this.subs.has(channel)) throw new Error(`already subscribed to ${channel}`);
    const sub = new Subscription(this, channel, since, handlers, presence);
    this.subs.set(channel, sub);
    if (this.isLive()) sub.send();
    return sub;
  }

  // enterPresence makes this connection a member of channel with data, now
  // if the socket is live and again on every new socket.
  enterPresence(channel, data) {
    this.present.set(channel, data);
    if (this.isLive()) this.sendPresence(channel, PresenceAction.ENTER);
  }

  // leavePresence ends this connection's membership of channel.
  leavePresence(channel) {
    if (!this.present.delete(channel)) return;
    if (this.isLive()) this.sendPresence(channel, PresenceAction.LEAVE);
  }

  sendPresence(channel, action) {
    const id = this.ref();
    const frame = { type: Op.PRESENCE, id, channel, action };
    const data = this.present.get(channel);
    if (action !== PresenceAction.LEAVE && data !== undefined) frame.data = data;
    this.presenceOps.set(id, channel);
    this.sendFrame(frame);
  }

  // updateToken hands the open socket a fresh token (an auth frame), so it
  // is not closed with 4009 when the old one expires. The next reconnect
  // takes the token from getToken() anyway.
  updateToken(token) {
    if (this.isLive()) this.sendFrame({ type: Op.AUTH, token, id: this.ref() });
  }

  // reconnectNow drops any socket and dials at once (also used by tests
  // and by the app's "Reconnect" button).
  reconnectNow() {
    this.attempt = 0;
    this.dropSocket('reconnect requested', State.RECONNECTING, 0);
  }

  isOpen() { return this.ws !== null && this.ws.readyState <= 1; }

  isLive() { return this.state === State.LIVE && this.ws?.readyState === 1; }

  // internals

  ref() { return String(this.nextRef++); }

  setState(state, detail = {}) {
    if (this.state === state && !detail.force) return;
    this.state = state;
    try { this.onState(state, detail); } catch (err) { reportAsync(err); }
  }

  async open() {
    this.clearTimers();
    if (this.stopped) return;
    if (globalThis.navigator && navigator.onLine === false) {
      this.setState(State.OFFLINE, { reason: 'browser offline' });
      return; // the online event reconnects
    }
    this.setState(this.attempt === 0 && this.state !== State.RECONNECTING ? State.CONNECTING : State.RECONNECTING,
      { attempt: this.attempt });
    let token;
    try {
      token = await this.getToken();
    } catch {
      token = '';
    }
    if (this.stopped) return;
    if (!token) {
      this.setState(State.OFFLINE, { reason: 'no token' });
      return;
    }
    let ws;
    try {
      ws = new this.WS(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    // A path that accepts the connection and then forwards nothing never
    // fails on its own: give up on a socket not live in deadAfter.
    this.timers.connect = setTimeout(() => {
      if (this.ws === ws && this.state !== State.LIVE) this.dropSocket('connect timeout', State.RECONNECTING);
    }, this.deadAfter);
    ws.onopen = () => ws.send(JSON.stringify({ type: Op.AUTH, token }));
    ws.onmessage = (e) => this.handleMessage(ws, e.data);
    ws.onclose = (e) => this.handleClose(ws, e.code, e.reason);
    ws.onerror = () => { /* onclose follows with the code */ };
  }

  detach(ws) {
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
  }

  handleMessage(ws, raw) {
    if (ws !== this.ws) return;
    this.lastSeen = Date.now();
    let f;
    try { f = JSON.parse(raw); } catch { return; }
    switch (f.type) {
      case Frame.CONNECTED:
        this.connectionId = f.connectionId ?? '';
        if (f.heartbeat > 0) this.heartbeatMs = f.heartbeat;
        clearTimeout(this.timers.connect);
        this.attempt = 0;
        this.authFailures = 0;
        this.setState(State.LIVE, { connectionId: this.connectionId, expiresAt: f.expiresAt, force: true });
        this.startHeartbeat();
        this.presenceOps.clear();
        for (const sub of this.subs.values()) sub.send();
        for (const channel of this.present.keys()) this.sendPresence(channel, PresenceAction.ENTER);
        break;
      case Frame.SUBSCRIBED:
        this.subs.get(f.channel)?.handleSubscribed(f);
        break;
      case Frame.EVENT: {
        const ev = f.event ?? f;
        this.subs.get(ev.channel)?.handleEvent(ev);
        break;
      }
      case Frame.RESYNC:
        this.subs.get(f.channel)?.handleResync(f);
        break;
      case Frame.PRESENCE:
        this.subs.get(f.channel)?.handlePresence(f);
        break;
      case Frame.ACK:
        this.presenceOps.delete(f.ref);
        break;
      case Frame.UNSUBSCRIBED:
        this.subs.get(f.channel)?.handleUnsubscribed(f);
        break;
      case Frame.ERROR: {
        if (this.presenceOps.has(f.ref)) {
          this.presenceFailed(f);
          break;
        }
        const sub = f.channel ? this.subs.get(f.channel) : null;
        if (sub) sub.handleError(f);
        else safeCall(this.onError, f);
        break;
      }
      case Frame.AUTHENTICATED:
        safeCall(this.onAuthenticated, f);
        break;
      case Frame.PONG:
      default:
        break;
    }
  }

  async handleClose(ws, code, reason) {
    if (ws !== this.ws) return;
    this.detach(ws);
    this.ws = null;
    this.clearTimers();
    for (const sub of this.subs.values()) sub.active = false;
    if (this.stopped) return;

    if (code === Close.UNAUTHORIZED || code === Close.TOKEN_EXPIRED) {
      this.authFailures++;
      if (this.authFailures >= MAX_AUTH_FAILURES || !this.onAuthError) {
        this.setState(State.OFFLINE, { reason: 'auth', code });
        return;
      }
      this.setState(State.RECONNECTING, { reason: 'auth', code });
      let fresh = null;
      try { fresh = await this.onAuthError(code); } catch { fresh = null; }
      if (this.stopped) return;
      if (!fresh) {
        this.setState(State.OFFLINE, { reason: 'auth', code });
        return;
      }
      this.scheduleReconnect(0);
      return;
    }
    if (code === Close.FORBIDDEN) {
      this.setState(State.OFFLINE, { reason: 'forbidden', code });
      return;
    }
    this.setState(State.RECONNECTING, { code, reason, attempt: this.attempt });
    this.scheduleReconnect();
  }

  // presenceFailed handles a refused presence op: the backend hiccupped
  // (retried after a backoff, if the membership is still wanted), or a
  // refusal, which is the app's to hear.
  presenceFailed(f) {
    const channel = this.presenceOps.get(f.ref);
    this.presenceOps.delete(f.ref);
    if (f.code !== ErrorCode.UNAVAILABLE) {
      safeCall(this.onError, f);
      return;
    }
    const ws = this.ws;
    setTimeout(() => {
      if (this.ws === ws && this.isLive() && this.present.has(channel)) this.sendPresence(channel, PresenceAction.ENTER);
    }, jittered(this.attempt, 1000, 15000));
  }

  // dropSocket abandons the current socket without waiting for its close
  // handshake (which may never come on a dead network) and moves on.
  dropSocket(reason, state, delay) {
    this.clearTimers();
    for (const sub of this.subs.values()) sub.active = false;
    if (this.ws) {
      const ws = this.ws;
      this.detach(ws);
      this.ws = null;
      try { ws.close(Close.NORMAL, reason); } catch { /* ignore */ }
    }
    this.setState(state, { reason });
    if (state !== State.OFFLINE) this.scheduleReconnect(delay);
  }

  scheduleReconnect(delay) {
    if (this.stopped) return;
    const d = delay ?? jittered(this.attempt, this.minBackoff, this.maxBackoff);
    this.attempt++;
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => this.open(), d);
  }

  // startHeartbeat sends an application ping every pingInterval (the
  // server answers pong) and drops a socket the server has been silent on
  // for deadAfter: the server's own WebSocket pings are answered by the
  // browser invisibly, so only frames tell this side the path is alive, and
  // a silent network drop must show as "Reconnecting…" within about 10 s,
  // not after the server's 25 s heartbeat plus a grace (issue 15).
  startHeartbeat() {
    clearInterval(this.timers.heartbeat);
    this.lastSeen = Date.now();
    this.lastPing = 0;
    const tick = Math.max(50, Math.min(1000, this.pingInterval, this.deadAfter / 4));
    this.timers.heartbeat = setInterval(() => {
      const now = Date.now();
      if (now - this.lastSeen > this.deadAfter) {
        this.dropSocket('heartbeat timeout', State.RECONNECTING);
        return;
      }
      if (now - this.lastPing >= Math.min(this.pingInterval, this.heartbeatMs)) {
        this.lastPing = now;
        this.sendFrame({ type: Op.PING });
      }
    }, tick);
  }

  clearTimers() {
    clearTimeout(this.timers.reconnect);
    clearTimeout(this.timers.connect);
    clearInterval(this.timers.heartbeat);
  }

  sendFrame(frame) {
    if (this.ws?.readyState !== 1) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }
}

// Subscription is one channel of a RealtimeClient.
class Subscription {
  constructor(client, channel, since, handlers, presence) {
    this.client = client;
    this.presence = presence;
    this.members = new Map(); // clientId + ' ' + connectionId -> member
    this.channel = channel;
    this.since = since || '';
    this.handlers = handlers;
    this.active = false;
    this.pendingResubscribe = false;
    this.seen = new Set();
    this.seenOrder = [];
    this.retry = 0;
  }

  // cursor is the position the subscription resumes from.
  get cursor() { return this.since; }

  send() {
    this.pendingResubscribe = false;
    const frame = { type: Op.SUBSCRIBE, channel: this.channel, id: this.client.ref() };
    if (this.since) frame.since = this.since;
    if (this.presence) frame.presence = true;
    this.client.sendFrame(frame);
  }

  // resubscribe restarts the subscription from since (the cursor of a
  // snapshot the app just fetched), so everything after the snapshot is
  // replayed in order after it.
  resubscribe(since) {
    this.since = since || '';
    if (!this.client.isLive()) return; // the next connect subscribes from since
    if (this.active) {
      this.pendingResubscribe = true;
      this.client.sendFrame({ type: Op.UNSUBSCRIBE, channel: this.channel, id: this.client.ref() });
    } else {
      this.send();
    }
  }

  unsubscribe() {
    this.client.subs.delete(this.channel);
    if (this.active) this.client.sendFrame({ type: Op.UNSUBSCRIBE, channel: this.channel, id: this.client.ref() });
    this.active = false;
  }

  handleSubscribed(f) {
    this.active = true;
    this.retry = 0;
    const asked = this.since;
    // The cursor is where the stream continues: since itself after a
    // successful resume, otherwise the channel's current position.
    if (f.cursor) this.since = f.cursor;
    safeCall(this.handlers.onSubscribed, { recovered: f.recovered !== false, cursor: f.cursor });
    if (this.presence && Array.isArray(f.presence)) {
      this.members = new Map(f.presence.map((m) => [memberKey(m), m]));
      safeCall(this.handlers.onMembers, [...this.members.values()]);
    }
    if (asked && f.recovered === false) {
      safeCall(this.handlers.onResync, { cursor: f.cursor, reason: 'not_recovered' });
    }
  }

  handleUnsubscribed() {
    this.active = false;
    if (this.pendingResubscribe && this.client.subs.get(this.channel) === this) this.send();
  }

  handleEvent(ev) {
    if (!ev.id || this.seen.has(ev.id)) return;
    this.seen.add(ev.id);
    this.seenOrder.push(ev.id);
    if (this.seenOrder.length > SEEN_IDS) this.seen.delete(this.seenOrder.shift());
    this.since = ev.id;
    safeCall(this.handlers.onEvent, ev);
  }

  // handlePresence applies one change on top of the list the subscribed
  // frame gave; each change sets its member's whole state.
  handlePresence(f) {
    if (!this.presence || !f.member) return;
    if (f.action === PresenceAction.LEAVE) this.members.delete(memberKey(f.member));
    else this.members.set(memberKey(f.member), f.member);
    safeCall(this.handlers.onMembers, [...this.members.values()]);
  }

  handleResync(f) {
    if (f.cursor) this.since = f.cursor;
    safeCall(this.handlers.onResync, { cursor: f.cursor, reason: 'resync' });
  }

  handleError(f) {
    if (f.code === ErrorCode.ALREADY_SUBSCRIBED) {
      this.active = true;
      return;
    }
    if (f.code === ErrorCode.UNAVAILABLE && this.client.isLive()) {
      // The hub backend hiccupped; ask again after a backoff.
      const d = jittered(this.retry++, 1000, 15000);
      setTimeout(() => { if (!this.active && this.client.subs.get(this.channel) === this && this.client.isLive()) this.send(); }, d);
    }
    safeCall(this.handlers.onError, f);
  }
}

function memberKey(m) {
  return `${m.clientId} ${m.connectionId}`;
}

function defaultURL() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${PATH}`;
}

// jittered is exponential backoff from min, capped at max, with the delay
// drawn from its upper half so a crowd of clients spreads out.
function jittered(attempt, min, max) {
  const d = Math.min(max, min * 2 ** Math.min(attempt, 16));
  return d / 2 + Math.random() * (d / 2);
}

function safeCall(fn, arg) {
  if (!fn) return;
  try { fn(arg); } catch (err) { reportAsync(err); }
}

// reportAsync rethrows outside the socket's handlers so an app bug shows
// in the console without breaking the connection logic.
function reportAsync(err) {
  setTimeout(() => { throw err; }, 0);
}
