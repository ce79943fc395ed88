// Fault scenarios for a released ably-js package in Node, driven line by
// line by internal/ablyrt/ablyjs_fault_integration_test.go: the Go test
// injects the faults (a stalled TCP path, a REST request answered 401) and
// publishes by REST; this script is the SDK's side. Commands arrive on
// stdin as JSON, each answered by one JSON line on stdout.
//
//   {"cmd":"start"}                 connect through the TCP proxy, attach, subscribe
//   {"cmd":"waitCount","n":N}       until N messages have arrived
//   {"cmd":"waitDisconnected","code":C}  until a DISCONNECTED with reason code C
//   {"cmd":"waitConnected"}         until the connection is connected again
//   {"cmd":"restPublish","from":A,"to":B}  publish "A".."B-1" by REST (token
//                                   auth, through the HTTP proxy), one request each
//   {"cmd":"report"}                what arrived, the states seen, the callback calls
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';

const require = createRequire(import.meta.url);
const Ably = require(process.env.ABLY_JS);
const env = process.env;
const base = {
  endpoint: '127.0.0.1', tls: false, useBinaryProtocol: env.FORMAT === 'msgpack',
  transports: ['web_socket'], logLevel: 0,
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, cond, ms = 30000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(20);
  }
}

let rt, firstId;
const received = [];
const states = [];
let authCalls = 0;
let rest;

const commands = {
  async start() {
    rt = new Ably.Realtime({ ...base, port: Number(env.TCP_PROXY_PORT), key: env.ABLY_KEY, realtimeRequestTimeout: 2000 });
    rt.connection.on((c) => states.push({ state: c.current, code: c.reason ? c.reason.code : 0 }));
    await rt.connection.once('connected');
    firstId = rt.connection.id;
    await rt.channels.get(env.CHANNEL).subscribe((m) => received.push(m.data));
    return { id: firstId };
  },
  async waitCount({ n }) {
    await waitFor(n + ' messages', () => received.length >= n);
    return {};
  },
  async waitDisconnected({ code }) {
    await waitFor('DISCONNECTED ' + code, () => states.some((s) => s.state === 'disconnected' && s.code === code));
    return {};
  },
  async waitConnected() {
    await waitFor('connected', () => rt.connection.state === 'connected');
    return { sameConnection: rt.connection.id === firstId };
  },
  async restPublish({ from, to }) {
    if (!rest) {
      const keyRest = new Ably.Rest({ ...base, port: Number(env.NODE_PORT), key: env.ABLY_KEY });
      rest = new Ably.Rest({
        ...base, port: Number(env.HTTP_PROXY_PORT),
        authCallback: (params, cb) => {
          authCalls++;
          keyRest.auth.requestToken().then((td) => cb(null, td), (e) => cb(e, null));
        },
      });
    }
    const ch = rest.channels.get(env.CHANNEL);
    for (let i = from; i < to; i++) await ch.publish('m', String(i));
    return {};
  },
  async report() {
    return { received, states, authCalls, sameConnection: rt.connection.id === firstId };
  },
};

const print = (o) => new Promise((r) => process.stdout.write(JSON.stringify(o) + '\n', r));
for await (const line of createInterface({ input: process.stdin })) {
  const c = JSON.parse(line);
  try {
    await print({ ok: await commands[c.cmd](c) });
  } catch (e) {
    await print({ error: { code: e && e.code, statusCode: e && e.statusCode, message: String(e && e.message) } });
  }
  if (c.cmd === 'report') break;
}
rt && rt.close();
process.exit(0);
