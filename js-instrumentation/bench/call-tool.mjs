// callTool over InMemoryTransport against an in-process McpServer, plain vs instrumented,
// in alternating rounds; the instrumented client exports to a discarding OTLP receiver in a
// child process (so export cost lands where it does in an app: on the app's event loop).
//   node bench/call-tool.mjs [calls-per-round] [rounds]
import { spawn } from 'node:child_process';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

import { getSdk, init, instrumentMcpClient, shutdown } from '../dist/index.js';


const CALLS = Number(process.argv[2] ?? 5000);
const ROUNDS = Number(process.argv[3] ?? 5);

const sink = spawn(process.execPath, ['-e', `
  const s = require('node:http').createServer((q, r) => { q.resume(); q.on('end', () => r.end('{}')); });
  s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve) => sink.stdout.once('data', (d) => resolve(Number(String(d).trim()))));

async function connectedClient(instrument) {
  const server = new McpServer({ name: 'bench', version: '1.0.0' });
  server.registerTool('add', { inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => ({
    content: [{ type: 'text', text: String(a + b) }],
  }));
  const [ct, st] = InMemoryTransport.createLinkedPair();
  await server.connect(st);
  const client = new Client({ name: 'bench-client', version: '1.0.0' });
  if (instrument) instrumentMcpClient(client);
  await client.connect(ct);
  return client;
}

async function round(client, n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = await client.callTool({ name: 'add', arguments: { a: i, b: 1 } });
    if (r.isError) throw new Error('unexpected tool error');
    // InMemoryTransport resolves on microtasks only; give the event loop (and so the exporter's
    // I/O) a turn now and then, as any real transport would, in both arms alike.
    if (i % 256 === 255) await new Promise((r) => setImmediate(r));
  }
  return Number(process.hrtime.bigint() - t0) / 1e3 / n; // µs per call
}

const base = { endpoint: `http://127.0.0.1:${port}`, serviceName: 'bench', consoleLevel: 'off', captureGlobalErrors: false };
const plain = await connectedClient(false);
const instrumented = await connectedClient(true);

// init() swaps the SDK the instrumented client consults, so one client serves both settings.
const arms = [
  { name: 'baseline (no instrumentation)', client: plain, setup: () => shutdown(5000) },
  { name: 'instrumented, every span exported', client: instrumented, setup: () => init({ ...base, sampleRatio: 1 }) },
  { name: 'instrumented, sampleRatio 0 (errors only)', client: instrumented, setup: () => init({ ...base, sampleRatio: 0 }) },
];
const results = arms.map(() => []);
let exported = 0;
let dropped = 0;
for (let r = -1; r < ROUNDS; r++) {
  for (let k = 0; k < arms.length; k++) {
    await arms[k].setup();
    const us = await round(arms[k].client, r < 0 ? 1000 : CALLS); // round -1 warms up
    if (r >= 0) results[k].push(us);
    const sdk = getSdk();
    if (sdk) {
      await sdk.flush(5000);
      exported += sdk.stats().spansExported;
      dropped += sdk.stats().dropped;
    }
  }
}
await shutdown(5000);
await plain.close();
await instrumented.close();
sink.kill();

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const m = results.map(median);
console.log(`callTool over InMemoryTransport, ${ROUNDS} rounds x ${CALLS} calls per arm, median of rounds (Node ${process.version})`);
arms.forEach((arm, k) => {
  const ratio = k === 0 ? '' : `   ratio ${(m[k] / m[0]).toFixed(3)} (+${(m[k] - m[0]).toFixed(1)} µs/call)`;
  console.log(`  ${arm.name.padEnd(44)} ${m[k].toFixed(1).padStart(7)} µs/call  ${String(Math.round(1e6 / m[k])).padStart(6)} calls/s${ratio}`);
});
console.log(`  spans exported: ${exported}, dropped: ${dropped}`);
