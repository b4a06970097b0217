import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { build } from 'esbuild';
import { chromium } from 'playwright-core';

import { autohealAvailable, PYTHON, startAutoheal } from './helpers/autoheal.mjs';
import { FAILING_ARGS, FAILING_MESSAGE, FAILING_TOOL, startMcpServer, usesDefaultServer } from './helpers/mcp.mjs';
import { killAll } from './helpers/processes.mjs';
import { startReceiver } from './helpers/receiver.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CHROMIUM = process.env.AUTOHEAL_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const serviceAvailable = await autohealAvailable();
if (!serviceAvailable && process.env.AUTOHEAL_REQUIRE_SERVICE === '1') {
  throw new Error(`otel_autoheal is not importable with AUTOHEAL_PYTHON=${PYTHON}`);
}

let receiver;
let mcp;
let site;
let files;
let browser;
let profile;

/** The MCP SDK client bundled for the page, as an app's own bundler would do. */
async function bundleMcpSdk() {
  const out = await build({
    stdin: {
      contents: [
        "import { Client } from '@modelcontextprotocol/sdk/client/index.js';",
        "import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';",
        'window.McpSdk = { Client, StreamableHTTPClientTransport };',
      ].join('\n'),
      resolveDir: ROOT,
      loader: 'js',
    },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    write: false,
    logLevel: 'silent',
  });
  return out.outputFiles[0].text;
}

function shopPage(cfg) {
  return {
    type: 'text/html',
    body: `<!doctype html><html><head><title>shop</title>
<script>window.__cfg = ${JSON.stringify(cfg)};</script>
<script src="/otel-autoheal.js"></script><script src="/mcp-sdk.js"></script><script src="/app.js"></script>
</head><body>shop</body></html>`,
  };
}

async function startSite(files) {
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const file = files[path];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': file.type, 'Cache-Control': 'no-store' }).end(file.body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

before(async () => {
  receiver = await startReceiver();
  mcp = await startMcpServer({ otlpEndpoint: receiver.url });
  const mcpSdk = await bundleMcpSdk();
  files = {
    '/otel-autoheal.js': { type: 'text/javascript', body: readFileSync(join(ROOT, 'dist/otel-autoheal.iife.min.js')) },
    '/mcp-sdk.js': { type: 'text/javascript', body: mcpSdk },
    '/app.js': { type: 'text/javascript', body: readFileSync(join(ROOT, 'test/fixtures/browser-app.js')) },
    '/next.html': { type: 'text/html', body: '<!doctype html><title>next</title>' },
  };
  site = await startSite(files);
  files['/'] = shopPage({ otlpEndpoint: receiver.url, mcpUrl: mcp.url, failingTool: FAILING_TOOL, failingArgs: FAILING_ARGS });
  profile = await mkdtemp(join(tmpdir(), 'autoheal-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
});

after(async () => {
  await browser?.close().catch(() => undefined);
  if (profile) await rm(profile, { recursive: true, force: true });
  site?.server.closeAllConnections();
  await new Promise((r) => (site ? site.server.close(r) : r()));
  await mcp?.stop();
  await receiver?.close();
  await killAll();
});

test('Chromium exports real V8 stacks and preceding console lines, correlated by trace id', async () => {
  const page = await browser.newPage();
  const pageUrl = `${site.origin}/`;
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.__done === true, null, { timeout: 60000 });
  const pageEvents = await page.evaluate(() => window.__pageEvents);
  // Our listeners ran alongside the page's own.
  assert.deepEqual(pageEvents, [
    "page saw error: Uncaught TypeError: Cannot read properties of undefined (reading 'total')",
    'page saw rejection: checkout rejected by server',
  ]);
  assert.equal((await page.evaluate(() => window.__toolResult)).isError, true);

  const excLogs = () => receiver.logs().filter((l) => l.resource['service.name'] === 'browser-app' && l.attrs['exception.type']);
  await receiver.waitFor(() => excLogs().length >= 3, { what: 'three browser exception logs' });
  const [uncaught, rejection, tool] = excLogs();

  const resource = uncaught.resource;
  assert.equal(resource['autoheal.source'], 'browser');
  assert.equal(resource['telemetry.sdk.language'], 'webjs');
  assert.equal(resource['service.version'], '9.9.9');
  assert.match(resource['browser.user_agent'], /Chrome\//);
  assert.equal(resource['url.full'], pageUrl);

  const appJs = `${site.origin}/app.js`.replace(/[.]/g, '\\.');
  // Uncaught error: Chromium's own stack, V8 format, pointing into the page's script.
  assert.equal(uncaught.attrs['exception.type'], 'TypeError');
  assert.equal(uncaught.attrs['exception.message'], "Cannot read properties of undefined (reading 'total')");
  assert.match(uncaught.attrs['exception.stacktrace'], new RegExp(`\\n\\s+at renderCart \\(${appJs}:\\d+:\\d+\\)\\n\\s+at step1 \\(${appJs}:\\d+:\\d+\\)`));
  assert.equal(uncaught.attrs['autoheal.capture'], 'window.error');
  assert.equal(uncaught.attrs['url.full'], pageUrl);

  assert.equal(rejection.attrs['exception.type'], 'Error');
  assert.equal(rejection.attrs['exception.message'], 'checkout rejected by server');
  assert.match(rejection.attrs['exception.stacktrace'], new RegExp(`at submitOrder \\(${appJs}:\\d+:\\d+\\)`));
  assert.equal(rejection.attrs['autoheal.capture'], 'window.unhandledrejection');

  assert.equal(tool.attrs['exception.type'], 'McpToolError');
  assert.match(tool.attrs['exception.message'], FAILING_MESSAGE);
  assert.match(tool.attrs['exception.stacktrace'], new RegExp(`at (async )?step3 \\(${appJs}:\\d+:\\d+\\)`));

  // Every exception log carries the trace and span of its error span.
  const spans = receiver.spans().filter((s) => s.resource['service.name'] === 'browser-app');
  for (const [log, name] of [
    [uncaught, 'uncaught_exception'],
    [rejection, 'unhandled_rejection'],
    [tool, `tools/call ${FAILING_TOOL}`],
  ]) {
    const span = spans.find((s) => s.spanId === log.spanId);
    assert.ok(span, `span for ${name}`);
    assert.equal(span.name, name);
    assert.equal(span.traceId, log.traceId);
    assert.equal(span.status.code, 2);
    assert.ok(span.events.some((e) => e.name === 'exception'));
  }
  assert.equal(new Set([uncaught.traceId, rejection.traceId, tool.traceId]).size, 3);

  // The console lines that preceded each error belong to that error's trace.
  const linesOf = (traceId) =>
    receiver.logs().filter((l) => l.traceId === traceId && l.attrs['log.origin']).map((l) => `${l.severityText} ${l.text}`);
  assert.deepEqual(linesOf(uncaught.traceId), ['INFO user opened cart 42', 'WARN price service slow: 1200ms']);
  // Scrubbed in the page: the secret never reached the receiver.
  assert.deepEqual(linesOf(rejection.traceId), ['INFO retrying checkout with password=[redacted:password]']);
  assert.ok(!JSON.stringify(receiver.requests.map((r) => r.json)).includes('Fake-Pw-8d3k2J'));
  assert.deepEqual(linesOf(tool.traceId), ['ERROR about to call the inventory tool']);

  // The MCP server span joined the browser's trace across origins (this receiver reads
  // OTLP/JSON only, so only the JS test server's spans can be checked here).
  if (usesDefaultServer()) {
    const serverSpan = await receiver.waitFor(
      (r) => r.spans().find((s) => s.traceId === tool.traceId && s.kind === 2),
      { what: 'the server span in the browser trace' },
    );
    assert.equal(serverSpan.parentSpanId, tool.spanId);
    assert.ok(mcp.traceparents().some((t) => t.traceparent?.includes(tool.traceId)));
  }

  // Leaving the page flushes what is still queued (keepalive fetch on pagehide).
  assert.equal(receiver.spans().filter((s) => s.name === 'before-navigation').length, 0);
  await page.goto(`${site.origin}/next.html`);
  await receiver.waitFor((r) => r.spans().some((s) => s.name === 'before-navigation'), { what: 'the pagehide flush' });
  await page.close();
});

test('the same page reaches the real otel-autoheal service (CORS preflight with a bearer token) and becomes browser issues', {
  skip: serviceAvailable ? false : `otel_autoheal not importable with ${PYTHON} (set AUTOHEAL_PYTHON)`,
}, async () => {
  const token = 'browser-ingest-token-7f3a';
  const service = await startAutoheal({ corsOrigins: [site.origin], env: { AUTOHEAL_INGEST_TOKEN: token } });
  const svcMcp = await startMcpServer({ otlpEndpoint: service.httpEndpoint, serviceName: 'browser-test-mcp-server' });
  try {
    files['/svc.html'] = shopPage({ otlpEndpoint: service.httpEndpoint, mcpUrl: svcMcp.url, failingTool: FAILING_TOOL, failingArgs: FAILING_ARGS, ingestToken: token });
    const page = await browser.newPage();
    await page.goto(`${site.origin}/svc.html`);
    await page.waitForFunction(() => window.__done === true, null, { timeout: 60000 });
    const find = (list) => {
      const typeError = list.find((i) => i.source === 'browser' && i.exception_type === 'TypeError');
      const rejected = list.find((i) => i.source === 'browser' && /checkout rejected by server/.test(i.title));
      return typeError && rejected ? { typeError, rejected } : false;
    };
    const { typeError, rejected } = find(await service.waitForIssues(find));
    assert.equal(typeError.service, 'browser-app');
    assert.match(typeError.body, /at renderCart \(http:\/\/127\.0\.0\.1:\d+\/app\.js:\d+:\d+\)/);
    assert.match(typeError.body, /user opened cart 42/);
    assert.match(typeError.body, /price service slow/);
    assert.match(typeError.body, new RegExp(typeError.trace_ids[0]));
    assert.match(rejected.body, /at submitOrder \(/);
    assert.match(rejected.body, /retrying checkout/);
    await page.close();
  } finally {
    delete files['/svc.html'];
    await svcMcp.stop();
    await service.stop();
  }
});
