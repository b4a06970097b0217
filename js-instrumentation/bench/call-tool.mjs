// A successful callTool, plain vs instrumented, in alternating rounds:
//  1. over InMemoryTransport to an in-process McpServer (worst case: nothing but MCP overhead);
//  2. over streamable HTTP to the test server in a child process (what an app actually pays).
// The instrumented client exports to a discarding OTLP receiver in a child process, so export
// cost lands where it does in an app: on the app's event loop.
//   node bench/call-tool.mjs [calls-per-round] [rounds]
import { spawn } from 'node:child_process';

import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
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
// Children must not outlive a failed run.
process.on('exit', () => {
  sink.kill();
  httpServer?.kill();
});
let httpServer;
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

async function round(client, n, http) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    // The HTTP test server's succeeding tool is `ok`.
    const r = await client.callTool(http ? { name: 'ok', arguments: { text: String(i) } } : { name: 'add', arguments: { a: i, b: 1 } });
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

httpServer = spawn(process.execPath, [fileURLToPath(new URL('../test/fixtures/mcp-server.mjs', import.meta.url))], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_SDK_DISABLED: 'true' },
});
const mcpUrl = await new Promise((resolve) => {
  let out = '';
  httpServer.stdout.on('data', (d) => {
    out += d;
    const m = /MCP_URL (\S+)/.exec(out);
    if (m) resolve(m[1]);
  });
});
async function httpClient(instrument) {
  const client = new Client({ name: 'bench-http', version: '1.0.0' });
  if (instrument) instrumentMcpClient(client);
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl)));
  return client;
}
const plainHttp = await httpClient(false);
const instrumentedHttp = await httpClient(true);

// init() swaps the SDK the instrumented client consults, so one client serves both settings.
const arms = [
  { name: 'baseline (no instrumentation)', client: plain, setup: () => shutdown(5000) },
  { name: 'instrumented, every span exported', client: instrumented, setup: () => init({ ...base, sampleRatio: 1 }) },
  { name: 'instrumented, sampleRatio 0 (errors only)', client: instrumented, setup: () => init({ ...base, sampleRatio: 0 }) },
  { name: 'instrumented, no call-site capture', client: instrumented, setup: () => init({ ...base, captureCallSite: false }) },
  { name: 'HTTP baseline (no instrumentation)', client: plainHttp, setup: () => shutdown(5000), http: true },
  { name: 'HTTP instrumented, every span exported', client: instrumentedHttp, setup: () => init({ ...base, sampleRatio: 1 }), http: true },
];
const results = arms.map(() => []);
let exported = 0;
let dropped = 0;
for (let r = -1; r < ROUNDS; r++) {
  for (let k = 0; k < arms.length; k++) {
    await arms[k].setup();
    const n = arms[k].http ? Math.ceil(CALLS / 10) : CALLS;
    const us = await round(arms[k].client, r < 0 ? Math.ceil(n / 5) : n, arms[k].http); // round -1 warms up
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
for (const c of [plain, instrumented, plainHttp, instrumentedHttp]) await c.close();
httpServer.kill();
sink.kill();

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const m = results.map(median);
console.log(`successful callTool, ${ROUNDS} rounds (in-memory: ${CALLS} calls, HTTP: ${Math.ceil(CALLS / 10)} calls per round and arm), median of rounds, Node ${process.version}`);
arms.forEach((arm, k) => {
  const b = arm.http ? arms.findIndex((a) => a.http) : 0;
  const ratio = k === b ? '' : `   ratio ${(m[k] / m[b]).toFixed(3)} (+${(m[k] - m[b]).toFixed(1)} µs/call)`;
  console.log(`  ${arm.name.padEnd(44)} ${m[k].toFixed(1).padStart(7)} µs/call  ${String(Math.round(1e6 / m[k])).padStart(6)} calls/s${ratio}`);
});
console.log(`  spans exported: ${exported}, dropped: ${dropped}`);
