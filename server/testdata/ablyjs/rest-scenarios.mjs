// REST scenarios for a released ably-js package against a handoff node,
// shared by Node (run.mjs) and Chromium (server/ablyjs_browser_integration_test.go).
// Each step records its error instead of stopping the run, so one failure
// does not hide the others; the Go tests assert on the object returned and
// on what the node's desktop socket received.
import { errInfo, stepper } from './steps.mjs';

async function collect(page) {
  const items = [];
  for (let p = page; p; p = p.hasNext() ? await p.next() : null) {
    for (const m of p.items) items.push({ id: m.id, name: m.name, data: m.data, serial: m.serial, timestamp: m.timestamp });
  }
  return items;
}

export async function runREST(Ably, { port, key, channel, binary, logLevel = 0, debug = () => {} }) {
  const base = { endpoint: '127.0.0.1', port, tls: false, useBinaryProtocol: binary, logLevel };
  const out = {};
  const step = stepper(out, debug);
  const rest = new Ably.Rest({ ...base, key });
  const ch = rest.channels.get(channel);

  await step('time', async () => ({ ms: await rest.time() }));
  await step('publish', async () => {
    await ch.publish([{ name: 'note', data: { n: 1, text: 'from ably-js' } }, { name: 'ping', data: 'two' }]);
    await ch.publish('third', 'three');
    return { ok: true };
  });
  await step('historyForwards', async () => collect(await ch.history({ limit: 2, direction: 'forwards' })));
  await step('historyBackwards', async () => collect(await ch.history({ limit: 1 })));

  await step('token', async () => {
    const td = await rest.auth.requestToken({ ttl: 60000, capability: { [channel]: ['publish', 'history'] } });
    const byToken = new Ably.Rest({ ...base, token: td.token });
    await byToken.channels.get(channel).publish('by-token', { via: 'token' });
    let refused = null;
    try {
      await byToken.channels.get('session:not-granted').publish('x', 'y');
    } catch (e) {
      refused = errInfo(e);
    }
    return { capability: td.capability, refused };
  });

  await step('renewal', async () => {
    let calls = 0;
    // ably-js (2.12 to 2.28) renews a token it knows has expired, which it
    // can tell only once it knows the server's clock (time() sets the offset).
    // Without that it answers the server's 40140 by requesting a new token and
    // then resending the request with the old one, forever: an SDK quirk that
    // docs/ably.md describes.
    const renewing = new Ably.Rest({
      ...base,
      authCallback: (params, cb) => {
        calls++;
        rest.auth.requestToken({ ttl: 1500, capability: { [channel]: ['publish'] } }).then((td) => cb(null, td), (e) => cb(e, null));
      },
    });
    await renewing.time();
    const rc = renewing.channels.get(channel);
    await rc.publish('renew-1', 'first token');
    await new Promise((r) => setTimeout(r, 2500));
    await rc.publish('renew-2', 'second token');
    return { calls };
  });

  await step('badKey', async () => {
    const bad = new Ably.Rest({ ...base, key: key.replace(/:.*/, ':wrongwrongwrongwrong') });
    try {
      await bad.channels.get(channel).publish('x', 'y');
      return { published: true };
    } catch (e) {
      return { refused: errInfo(e) };
    }
  });
  return out;
}
