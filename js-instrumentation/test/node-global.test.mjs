import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { killAll, startProcess } from './helpers/processes.mjs';
import { startReceiver } from './helpers/receiver.mjs';

const APP = fileURLToPath(new URL('./fixtures/node-app.mjs', import.meta.url));
let receiver;

before(async () => {
  receiver = await startReceiver();
});

after(async () => {
  await killAll();
  await receiver?.close();
});

async function runApp(mode, env = {}) {
  const proc = startProcess(process.execPath, [APP, mode], {
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: `node-app-${mode}`, ...env },
  });
  const { code, signal } = await proc.exit;
  return { code, signal, stdout: proc.stdout, stderr: proc.stderr };
}

function exceptionLogs(service) {
  return receiver.logs().filter((l) => l.resource['service.name'] === service && l.attrs['exception.type']);
}

test('an uncaught exception is exported, then Node prints it and exits 1', async () => {
  const run = await runApp('uncaught');
  assert.equal(run.code, 1);
  assert.match(run.stderr, /TypeError: cart 7 has no items\n\s+at checkout \(.*node-app\.mjs:\d+:\d+\)/);
  assert.match(run.stderr, /Node\.js v\d+/);
  assert.match(run.stdout, /step 1: starting checkout/, 'console output is kept');

  const logs = exceptionLogs('node-app-uncaught');
  assert.equal(logs.length, 1, 'exported before the process died');
  const [log] = logs;
  assert.equal(log.attrs['exception.type'], 'TypeError');
  assert.equal(log.attrs['exception.message'], 'cart 7 has no items');
  assert.match(log.attrs['exception.stacktrace'], /at checkout \(file:.*node-app\.mjs:\d+:\d+\)/);
  assert.equal(log.severityNumber, 21);
  assert.equal(log.resource['autoheal.source'], 'node');
  const span = receiver.spans().find((s) => s.traceId === log.traceId);
  assert.equal(span.name, 'uncaught_exception');
  assert.equal(span.spanId, log.spanId);
  assert.equal(span.status.code, 2);
  assert.equal(span.events[0].attrs['exception.type'], 'TypeError');
  // The console lines before the crash joined the crash's trace; debug is below the default level.
  const lines = receiver.logs().filter((l) => l.traceId === log.traceId && l.attrs['log.origin']).map((l) => l.text);
  assert.deepEqual(lines, ['step 1: starting checkout', 'step 2: payment provider slow']);
});

test('an unhandled rejection is exported once, then Node exits 1 as it would', async () => {
  const run = await runApp('rejection');
  assert.equal(run.code, 1);
  assert.match(run.stderr, /RangeError: quota exceeded for tenant 9/);
  const logs = exceptionLogs('node-app-rejection');
  assert.equal(logs.length, 1);
  assert.equal(logs[0].attrs['exception.type'], 'RangeError');
  assert.equal(receiver.spans().find((s) => s.traceId === logs[0].traceId).name, 'unhandled_rejection');
});

test('a non-Error rejection reason is exported and Node reports ERR_UNHANDLED_REJECTION', async () => {
  const run = await runApp('rejection-string');
  assert.equal(run.code, 1);
  assert.match(run.stderr, /ERR_UNHANDLED_REJECTION/);
  const logs = exceptionLogs('node-app-rejection-string');
  assert.equal(logs.length, 1);
  assert.equal(logs[0].attrs['exception.message'], 'plain string reason');
});

test("with the app's own listeners the process keeps running and errors are still exported", async () => {
  const run = await runApp('handled');
  assert.equal(run.code, 0);
  assert.match(run.stdout, /app handled: cart 8 has no items/);
  assert.match(run.stdout, /still alive/);
  const logs = exceptionLogs('node-app-handled');
  assert.deepEqual(logs.map((l) => l.attrs['exception.message']).sort(), ['cart 8 has no items', 'second failure']);
  assert.ok(logs.every((l) => l.severityNumber === 17));
});

test("an app uncaughtException listener still receives rejections Node converts", async () => {
  const run = await runApp('app-exception-listener-only');
  assert.equal(run.code, 0);
  assert.match(run.stdout, /app saw: rejected under an app listener/);
  assert.match(run.stdout, /survived/);
  const logs = exceptionLogs('node-app-app-exception-listener-only');
  assert.equal(logs.length, 1);
  assert.equal(logs[0].severityNumber, 17, 'not fatal: the app listener keeps the process alive');
});

test('captureException before a normal exit is flushed on beforeExit', async () => {
  const run = await runApp('captured');
  assert.equal(run.code, 0);
  const logs = exceptionLogs('node-app-captured');
  assert.equal(logs.length, 1);
  assert.equal(logs[0].attrs['app.step'], 'export');
  assert.equal(logs[0].severityNumber, 17);
});

test('an unreachable endpoint neither throws into the app nor keeps a crashing process alive', async () => {
  const run = await runApp('uncaught', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_SERVICE_NAME: 'unreachable' });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /TypeError: cart 7 has no items/);
  assert.doesNotMatch(run.stderr, /ECONNREFUSED|fetch failed/);
});

test('an endpoint that never answers is cut off by the exit timeout', async () => {
  const { createServer } = await import('node:net');
  const sockets = [];
  const blackhole = createServer((s) => sockets.push(s));
  await new Promise((r) => blackhole.listen(0, '127.0.0.1', r));
  try {
    const run = await runApp('uncaught', {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${blackhole.address().port}`,
      EXIT_TIMEOUT: '300',
    });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /TypeError: cart 7 has no items/);
  } finally {
    sockets.forEach((s) => s.destroy());
    await new Promise((r) => blackhole.close(r));
  }
});

test('a normal exit is not held open by an export that never completes', async () => {
  const { createServer } = await import('node:net');
  const sockets = [];
  const blackhole = createServer((s) => sockets.push(s));
  await new Promise((r) => blackhole.listen(0, '127.0.0.1', r));
  try {
    // The export timeout is ten minutes, far beyond this test's timeout: only the exit bound
    // (300 ms) can end the process in time.
    const run = await runApp('captured', {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${blackhole.address().port}`,
      OTEL_EXPORTER_OTLP_TIMEOUT: '600000',
      EXIT_TIMEOUT: '300',
    });
    assert.equal(run.code, 0);
    assert.ok(sockets.length >= 1, 'the export was attempted');
  } finally {
    sockets.forEach((s) => s.destroy());
    await new Promise((r) => blackhole.close(r));
  }
});
