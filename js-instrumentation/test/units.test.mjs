import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { ROOT_CONTEXT, trace } from '@opentelemetry/api';

import { parseKeyValueList, resolveConfig } from '../dist/config.js';
import { formatConsoleArgs, patchConsole } from '../dist/console.js';
import { debugIdsFor } from '../dist/debugids.js';
import { OtlpJsonExporter } from '../dist/exporter.js';
import { extractContext, getTracer, init, injectContext, shutdown, VERSION } from '../dist/index.js';
import { encodeLogs, encodeTraces } from '../dist/otlp.js';
import { sampledByRatio } from '../dist/tracer.js';
import { startReceiver } from './helpers/receiver.mjs';

test('the package version and the compiled VERSION agree', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  assert.equal(VERSION, pkg.version);
});

test('traceparent survives inject then extract, and tracestate rides along', () => {
  const carrier = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'vendor=x' };
  const ctx = extractContext(carrier);
  const sc = trace.getSpanContext(ctx);
  assert.equal(sc.traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(sc.spanId, 'b7ad6b7169203331');
  assert.equal(sc.isRemote, true);
  const out = {};
  injectContext(ctx, out);
  assert.deepEqual(out, carrier);
});

test('invalid traceparents are ignored', () => {
  for (const tp of [
    '00-00000000000000000000000000000000-b7ad6b7169203331-01',
    '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
    'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra',
    '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01',
    'garbage',
    42,
  ]) {
    assert.equal(extractContext({ traceparent: tp }), ROOT_CONTEXT, String(tp));
  }
  assert.equal(extractContext(undefined), ROOT_CONTEXT);
});

test('explicit options beat environment variables, which beat defaults', () => {
  const saved = { ...process.env };
  try {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = 'http://env:4318';
    process.env.OTEL_SERVICE_NAME = 'env-svc';
    process.env.OTEL_EXPORTER_OTLP_HEADERS = 'x-a=1,x-b=two%20words';
    process.env.OTEL_TRACES_SAMPLER = 'parentbased_traceidratio';
    process.env.OTEL_TRACES_SAMPLER_ARG = '0.25';
    process.env.AUTOHEAL_INGEST_TOKEN = 's3cret';
    const fromEnv = resolveConfig({}, true);
    assert.equal(fromEnv.endpoint, 'http://env:4318');
    assert.equal(fromEnv.serviceName, 'env-svc');
    assert.equal(fromEnv.sampleRatio, 0.25);
    assert.deepEqual(fromEnv.headers, { 'x-a': '1', 'x-b': 'two words', Authorization: 'Bearer s3cret' });
    const explicit = resolveConfig({ endpoint: 'http://arg:1', serviceName: 'arg-svc', sampleRatio: 2, ingestToken: 't' }, true);
    assert.equal(explicit.endpoint, 'http://arg:1');
    assert.equal(explicit.serviceName, 'arg-svc');
    assert.equal(explicit.sampleRatio, 1, 'clamped to 1');
    assert.equal(explicit.headers.Authorization, 'Bearer t');
    for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_') || k.startsWith('AUTOHEAL_')) delete process.env[k];
    const defaults = resolveConfig({}, true);
    assert.equal(defaults.endpoint, 'http://localhost:4318');
    assert.equal(defaults.serviceName, 'unknown_service:node');
    assert.equal(defaults.sampleRatio, 1);
    assert.equal(defaults.consoleLevel, 'info');
    assert.deepEqual(parseKeyValueList('a=1,,=x,b'), { a: '1' });
  } finally {
    process.env = saved;
  }
});

test('ratio sampling is decided by the trace id, so both sides of a trace agree', () => {
  assert.equal(sampledByRatio('0af7651916cd43dd8448eb211c80319c', 1), true);
  assert.equal(sampledByRatio('0af7651916cd43dd8448eb211c80319c', 0), false);
  assert.equal(sampledByRatio('00000000000000000000000000000001', 0.5), true);
  assert.equal(sampledByRatio('0000000000000000000fffffffffffff', 0.5), false);
  let kept = 0;
  for (let i = 0; i < 4000; i++) if (sampledByRatio(i.toString(16).padStart(4, '0').repeat(8), 0.5)) kept++;
  assert.ok(kept > 1000 && kept < 3000, `kept ${kept} of 4000 at 0.5`);
});

test('OTLP/JSON uses hex ids, string int64s, OTLP span kinds and omits empty fields', () => {
  const json = JSON.parse(
    encodeTraces({ 'service.name': 's', n: 3, f: 1.5, b: true, l: ['x', 'y'] }, [
      {
        traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), flags: 1, name: 'n', kind: 2, startMs: 1700000000000.5, endMs: 1700000000001,
        attributes: { k: 'v' }, events: [{ name: 'exception', timeMs: 1700000000000, attributes: { 'exception.type': 'E' } }],
        links: [], statusCode: 2, statusMessage: 'boom', droppedAttributes: 0, droppedEvents: 0,
      },
    ]),
  );
  const rs = json.resourceSpans[0];
  assert.deepEqual(rs.resource.attributes, [
    { key: 'service.name', value: { stringValue: 's' } },
    { key: 'n', value: { intValue: '3' } },
    { key: 'f', value: { doubleValue: 1.5 } },
    { key: 'b', value: { boolValue: true } },
    { key: 'l', value: { arrayValue: { values: [{ stringValue: 'x' }, { stringValue: 'y' }] } } },
  ]);
  const span = rs.scopeSpans[0].spans[0];
  assert.equal(span.traceId, 'a'.repeat(32));
  assert.equal(span.kind, 3, 'API CLIENT (2) is OTLP SPAN_KIND_CLIENT (3)');
  assert.equal(span.startTimeUnixNano, '1700000000000500000');
  assert.equal(span.endTimeUnixNano, '1700000000001000000');
  assert.equal('parentSpanId' in span, false);
  assert.deepEqual(span.status, { code: 2, message: 'boom' });
  assert.equal(span.events[0].timeUnixNano, '1700000000000000000');
  const logs = JSON.parse(encodeLogs({}, [{ timeMs: 1, observedMs: 2, severityNumber: 17, severityText: 'ERROR', body: 'b', attributes: {}, traceId: 'c'.repeat(32), spanId: 'd'.repeat(16), flags: 1, eventName: 'exception' }]));
  const rec = logs.resourceLogs[0].scopeLogs[0].logRecords[0];
  assert.deepEqual(rec.body, { stringValue: 'b' });
  assert.equal(rec.timeUnixNano, '1000000');
  assert.equal(rec.eventName, 'exception');
});

test('the exporter bounds its queue, counts drops and never throws without fetch', async () => {
  const savedFetch = globalThis.fetch;
  const exp = new OtlpJsonExporter(
    { endpoint: 'http://127.0.0.1:1', headers: {}, maxQueueSize: 3, maxExportBatchSize: 100, scheduledDelayMillis: 60000, exportTimeoutMillis: 1000, keepalive: false },
    {},
  );
  const rec = () => ({ timeMs: 1, observedMs: 1, severityNumber: 9, severityText: 'INFO', attributes: {} });
  try {
    for (let i = 0; i < 5; i++) exp.addLog(rec());
    assert.equal(exp.stats.dropped, 2);
    globalThis.fetch = undefined;
    await exp.flush();
    assert.equal(exp.stats.dropped, 5);
    globalThis.fetch = () => {
      throw new Error('fetch exploded');
    };
    exp.addLog(rec());
    await exp.flush();
    assert.equal(exp.stats.failedRequests, 1);
    assert.equal(exp.hasPending(), false);
  } finally {
    globalThis.fetch = savedFetch;
  }
});

test('an export that hangs is aborted by the export timeout', async () => {
  const { createServer } = await import('node:net');
  const sockets = [];
  const blackhole = createServer((s) => sockets.push(s));
  await new Promise((r) => blackhole.listen(0, '127.0.0.1', r));
  try {
    const exp = new OtlpJsonExporter(
      { endpoint: `http://127.0.0.1:${blackhole.address().port}`, headers: {}, maxQueueSize: 10, maxExportBatchSize: 10, scheduledDelayMillis: 60000, exportTimeoutMillis: 200, keepalive: false },
      {},
    );
    exp.addLog({ timeMs: 1, observedMs: 1, severityNumber: 9, severityText: 'INFO', attributes: {} });
    await exp.flush();
    assert.equal(exp.stats.failedRequests, 1);
  } finally {
    sockets.forEach((s) => s.destroy());
    await new Promise((r) => blackhole.close(r));
  }
});

test('console capture keeps the original output, respects the level and restores the console', () => {
  const seen = [];
  const calls = [];
  const saved = { log: console.log, debug: console.debug, error: console.error };
  console.log = (...a) => calls.push(['log', ...a]);
  console.debug = (...a) => calls.push(['debug', ...a]);
  console.error = (...a) => calls.push(['error', ...a]);
  try {
    const undo = patchConsole('info', (method, sev, text, args) => seen.push([method, sev, text, formatConsoleArgs(args)]));
    console.log('a', 1, { b: 2 });
    console.debug('hidden');
    console.error(new TypeError('bad'));
    undo();
    console.log('after');
    assert.deepEqual(calls.map((c) => c[0]), ['log', 'debug', 'error', 'log']);
    assert.equal(seen.length, 2);
    assert.deepEqual(seen[0], ['log', 9, 'INFO', 'a 1 {"b":2}']);
    assert.equal(seen[1][1], 17);
    assert.match(seen[1][3], /^TypeError: bad\n\s+at /);
  } finally {
    Object.assign(console, saved);
  }
});

test('console records inside an active span are exported at once with that span', async () => {
  const receiver = await startReceiver();
  const { AsyncLocalStorageContextManager } = await import('./helpers/context-manager.mjs');
  const { context } = await import('@opentelemetry/api');
  const cm = new AsyncLocalStorageContextManager();
  context.setGlobalContextManager(cm);
  try {
    init({ endpoint: receiver.url, serviceName: 'unit', captureGlobalErrors: false, scheduledDelayMillis: 10 });
    const span = getTracer().startActiveSpan('work', (s) => {
      console.info('inside the span');
      s.end();
      return s;
    });
    await shutdown(5000);
    const log = receiver.logs().find((l) => l.text === 'inside the span');
    assert.equal(log.traceId, span.spanContext().traceId);
    assert.equal(log.spanId, span.spanContext().spanId);
  } finally {
    context.disable();
    await receiver.close();
  }
});

test('the browser bundle is one self-contained IIFE within its size budget', () => {
  const sizes = JSON.parse(readFileSync(new URL('../dist/bundle-size.json', import.meta.url), 'utf8'));
  const code = readFileSync(new URL('../dist/otel-autoheal.iife.min.js', import.meta.url), 'utf8');
  assert.match(code, /^"use strict";var OtelAutoheal=\(\(\)=>\{/);
  assert.doesNotMatch(code, /\brequire\(|\bimport\(/);
  assert.equal(sizes.raw, Buffer.byteLength(code));
  // 20 KiB gzip budget for a <script> tag that every page load pays for. Raised from 16 KiB for
  // scrubbing secrets at the source (issue 13): the shared rules (~3.7 KB gzip) and the engine
  // (~2.8 KB) must be in the page before the first error is sent, so they cannot load lazily.
  assert.ok(sizes.gzip < 20 * 1024, `gzip size ${sizes.gzip}`);
});

test('the published types accept the real MCP SDK Client (tsc on test/types)', async () => {
  const { execFile } = await import('node:child_process');
  const tsc = new URL('../node_modules/typescript/bin/tsc', import.meta.url).pathname;
  const project = new URL('./types/tsconfig.json', import.meta.url).pathname;
  const result = await new Promise((resolve) =>
    execFile(process.execPath, [tsc, '-p', project], (error, stdout, stderr) => resolve({ error, out: stdout + stderr })),
  );
  assert.equal(result.error, null, result.out);
});

test('console formatting applies %s-style substitutions like the console does', () => {
  assert.equal(formatConsoleArgs(['user %s has %d items (%i%%)', 'ann', '3', 42.7, 'extra']), 'user ann has 3 items (42%) extra');
  assert.equal(formatConsoleArgs(['%cstyled', 'color: red']), 'styled');
  assert.equal(formatConsoleArgs(['%o', { a: 1 }]), '{"a":1}');
  assert.equal(formatConsoleArgs(['missing %s']), 'missing %s');
  assert.equal(formatConsoleArgs([1, 'two']), '1 two');
});

test('an error storm is cut to the per-minute exception budget', async () => {
  const receiver = await startReceiver();
  try {
    const sdk = init({ endpoint: receiver.url, serviceName: 'storm', captureGlobalErrors: false, consoleLevel: 'off', maxExceptionsPerMinute: 5 });
    for (let i = 0; i < 50; i++) sdk.captureException(new Error(`storm ${i}`));
    assert.equal(sdk.stats().exceptionsDropped, 45);
    await shutdown(5000);
    const logs = receiver.logs().filter((l) => l.resource['service.name'] === 'storm');
    assert.deepEqual(logs.map((l) => l.attrs['exception.message']), ['storm 0', 'storm 1', 'storm 2', 'storm 3', 'storm 4']);
  } finally {
    await receiver.close();
  }
});

test('Debug IDs: bundles registered in _autohealDebugIds or _sentryDebugIds are named for the files of a stack', () => {
  const stack = [
    "TypeError: Cannot read properties of undefined (reading 'amount')",
    '    at r (https://shop.example/assets/app.min.js:1:36)',
    '    at https://shop.example/assets/vendor.min.js:2:10',
    '    at https://shop.example/assets/app.min.js:1:99',
  ].join('\n');
  assert.deepEqual(debugIdsFor(stack), []);
  globalThis._autohealDebugIds = { 'Error\n    at https://shop.example/assets/app.min.js:3:40': 'aaaaaaaa-1111-4222-8333-444444444444' };
  globalThis._sentryDebugIds = { 'Error\n    at https://shop.example/assets/vendor.min.js:5:7': 'bbbbbbbb-1111-4222-8333-444444444444' };
  try {
    assert.deepEqual(debugIdsFor(stack), [
      'aaaaaaaa-1111-4222-8333-444444444444 https://shop.example/assets/app.min.js',
      'bbbbbbbb-1111-4222-8333-444444444444 https://shop.example/assets/vendor.min.js',
    ]);
    // Firefox's shape, and a stack that runs through no registered bundle.
    assert.deepEqual(debugIdsFor('r@https://shop.example/assets/app.min.js:1:36\n'), [
      'aaaaaaaa-1111-4222-8333-444444444444 https://shop.example/assets/app.min.js',
    ]);
    assert.deepEqual(debugIdsFor('    at f (https://other.example/x.js:1:2)'), []);
  } finally {
    delete globalThis._autohealDebugIds;
    delete globalThis._sentryDebugIds;
  }
});
