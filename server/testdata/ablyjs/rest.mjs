// Runs rest-scenarios.mjs with one released ably-js package in Node and
// prints the result as one JSON line (server/ablyjs_integration_test.go).
import { createRequire } from 'node:module';
import { runREST } from './rest-scenarios.mjs';

const require = createRequire(import.meta.url);
const out = await runREST(require(process.env.ABLY_JS), {
  port: Number(process.env.HANDOFF_PORT),
  key: process.env.ABLY_KEY,
  channel: process.env.CHANNEL,
  binary: process.env.FORMAT === 'msgpack',
  logLevel: Number(process.env.ABLY_LOG_LEVEL || 0),
  debug: (s) => process.env.DEBUG && process.stderr.write(s + '\n'),
});
// ably-js keeps HTTP connections alive, which would keep Node running.
process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
