// Runs one of the shared scenarios with one released ably-js package in
// Node (server/ablyjs_integration_test.go): SCENARIO=rest runs
// rest-scenarios.mjs, SCENARIO=realtime realtime-scenarios.mjs.
// control(name) prints {"control":name} and waits for the Go test's line
// on stdin; the result is the last line printed, {"result":…}.
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { runREST } from './rest-scenarios.mjs';
import { runRealtime } from './realtime-scenarios.mjs';

const run = { rest: runREST, realtime: runRealtime }[process.env.SCENARIO];
if (!run) throw new Error(`SCENARIO must be rest or realtime, not ${process.env.SCENARIO}`);
const require = createRequire(import.meta.url);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const out = await run(require(process.env.ABLY_JS), {
  port: Number(process.env.HANDOFF_PORT),
  key: process.env.ABLY_KEY,
  channel: process.env.CHANNEL,
  binary: process.env.FORMAT === 'msgpack',
  logLevel: Number(process.env.ABLY_LOG_LEVEL || 0),
  debug: (s) => process.env.DEBUG && process.stderr.write(s + '\n'),
  control: async (name) => {
    process.stdout.write(JSON.stringify({ control: name }) + '\n');
    await lines.next();
  },
});
// ably-js keeps HTTP connections alive, which would keep Node running.
process.stdout.write(JSON.stringify({ result: out }) + '\n', () => process.exit(0));
