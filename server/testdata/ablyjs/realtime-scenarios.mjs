// Realtime scenarios for a released ably-js package against a handoff node,
// shared by Node (run.mjs) and Chromium. `control(name)` asks the Go
// test to do something the SDK cannot (add a photo through the capture API,
// cut the transport) and resolves when it is done. Each step records its
// error instead of stopping the run; the Go test asserts on the result.
import { errInfo, stepper } from './steps.mjs';

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(what, cond, ms = 15000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(20);
  }
}

function view(m) {
  return { id: m.id, name: m.name, data: m.data, connectionId: m.connectionId, clientId: m.clientId, timestamp: m.timestamp };
}

export async function runRealtime(Ably, { port, key, channel, binary, logLevel = 0, control, debug = () => {} }) {
  const base = { endpoint: '127.0.0.1', port, tls: false, useBinaryProtocol: binary, logLevel, transports: ['web_socket'] };
  const out = {};
  const step = stepper(out, debug);

  const rt = new Ably.Realtime({ ...base, key });
  const states = [];
  rt.connection.on((c) => states.push({ current: c.current, reason: c.reason && c.reason.code }));
  const ch = rt.channels.get(channel);
  const received = [];
  const names = () => received.map((m) => m.name);

  await step('connect', async () => {
    await rt.connection.once('connected');
    return { id: rt.connection.id, hasKey: !!rt.connection.key };
  });
  await step('attach', async () => {
    await ch.subscribe((m) => received.push(view(m)));
    return { state: ch.state, attachSerial: ch.properties && ch.properties.attachSerial };
  });
  await step('publish', async () => {
    await ch.publish('rt-1', { n: 1 });
    await ch.publish([{ name: 'rt-2', data: 'two' }, { name: 'rt-3', data: 'three' }]);
    await waitFor('rt-3 echoed', () => names().includes('rt-3'));
    return { ok: true };
  });
  await step('hubEvent', async () => {
    await control('photo');
    await waitFor('image.added', () => names().includes('image.added'));
    return { ok: true };
  });
  await step('rest', async () => {
    const rest = new Ably.Rest({ ...base, key });
    await rest.channels.get(channel).publish('rest-1', { via: 'rest' });
    await waitFor('rest-1', () => names().includes('rest-1'));
    return { ok: true };
  });
  await step('drop', async () => {
    const before = rt.connection.id;
    const from = states.length;
    await control('cut'); // the Go test cuts the socket and publishes gap-1..gap-5 through REST meanwhile
    await waitFor('gap-5', () => names().includes('gap-5'));
    await waitFor('connected again', () => rt.connection.state === 'connected');
    return { sameConnection: rt.connection.id === before, states: states.slice(from).map((s) => s.current) };
  });
  await step('ping', async () => ({ ms: await rt.connection.ping() }));
  await step('history', async () => {
    const page = await ch.history({ untilAttach: true, direction: 'forwards', limit: 100 });
    return { names: page.items.map((m) => m.name) };
  });
  await step('token', async () => {
    let calls = 0;
    const keyRest = new Ably.Rest({ ...base, key });
    const t = new Ably.Realtime({
      ...base,
      authCallback: (params, cb) => {
        calls++;
        keyRest.auth.requestToken({ ttl: 4000, capability: { [channel]: ['subscribe', 'publish'] } }).then((td) => cb(null, td), (e) => cb(e, null));
      },
    });
    try {
      await t.connection.once('connected');
      const id = t.connection.id;
      const tc = t.channels.get(channel);
      const seen = [];
      await tc.subscribe((m) => seen.push(m.name));
      await tc.publish('token-1', 'before expiry');
      await sleep(5000);
      await waitFor('connected after renewal', () => t.connection.state === 'connected');
      await tc.publish('token-2', 'after renewal');
      await waitFor('token-2', () => seen.includes('token-2'));
      return { calls, sameConnection: t.connection.id === id, seen };
    } finally {
      t.close();
    }
  });
  await step('badKey', async () => {
    const bad = new Ably.Realtime({ ...base, key: key.replace(/:.*/, ':wrongwrongwrongwrong') });
    try {
      const change = await Promise.race([bad.connection.once('failed'), sleep(10000).then(() => null)]);
      return { state: bad.connection.state, reason: change && change.reason ? errInfo(change.reason) : null };
    } finally {
      bad.close();
    }
  });
  await step('presence', async () => {
    // Two more clients with clientIds: b enters, updates, leaves, enters
    // again and closes; a sees every event and gets the members.
    const a = new Ably.Realtime({ ...base, key, clientId: 'js-a' });
    const b = new Ably.Realtime({ ...base, key, clientId: 'js-b' });
    const pview = (m) => ({ action: m.action, clientId: m.clientId, connectionId: m.connectionId, id: m.id, data: m.data });
    try {
      const pa = a.channels.get(channel).presence;
      const pb = b.channels.get(channel).presence;
      const seen = [];
      await pa.subscribe((m) => seen.push(pview(m)));
      const count = (action) => seen.filter((m) => m.clientId === 'js-b' && m.action === action).length;
      await pb.enter({ role: 'phone' });
      await waitFor('enter', () => count('enter') === 1);
      const during = (await pa.get()).map(pview);
      await pb.update('camera on');
      await waitFor('update', () => count('update') === 1);
      await pb.leave();
      await waitFor('leave', () => count('leave') === 1);
      await pb.enter('again');
      await waitFor('enter again', () => count('enter') === 2);
      const bConnection = b.connection.id;
      b.close();
      await waitFor('synthesized leave', () => count('leave') === 2);
      const after = (await pa.get()).map(pview);
      return { events: seen, during, after, bConnection };
    } finally {
      a.close();
      b.close();
    }
  });
  await step('close', async () => {
    rt.close();
    await rt.connection.once('closed');
    return { state: rt.connection.state };
  });
  out.received = received;
  return out;
}
