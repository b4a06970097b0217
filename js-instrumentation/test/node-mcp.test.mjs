import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { forceFlush, init, instrumentMcpClient, setEnabled, shutdown } from '../dist/index.js';
import { FAILING_ARGS, FAILING_MESSAGE, FAILING_TOOL, OK_ARGS, OK_TOOL, STDIO, startMcpServer, usesDefaultServer } from './helpers/mcp.mjs';
import { killAll } from './helpers/processes.mjs';
import { startReceiver } from './helpers/receiver.mjs';

let receiver;
let server;
let client;

before(async () => {
  receiver = await startReceiver();
  server = await startMcpServer({ otlpEndpoint: receiver.url });
  init({ endpoint: receiver.url, serviceName: 'node-client', serviceVersion: '1.2.3', captureGlobalErrors: false, scheduledDelayMillis: 100 });
  client = instrumentMcpClient(new Client({ name: 'test-client', version: '1.0.0' }));
  await client.connect(server.transport());
});

after(async () => {
  await client?.close().catch(() => undefined);
  await shutdown(2000);
  await server?.stop();
  await receiver?.close();
  await killAll();
});

function spansOfTrace(traceId) {
  return receiver.spans().filter((s) => s.traceId === traceId);
}

test('a failing tool call shares one trace between the client span, the server span and the exception log', async () => {
  console.log('loading cart for user 42');
  console.warn('inventory cache is cold');
  const result = await client.callTool({ name: FAILING_TOOL, arguments: FAILING_ARGS });
  assert.equal(result.isError, true);
  await forceFlush();

  const clientSpan = await receiver.waitFor(
    (r) => r.spans().find((s) => s.name === `tools/call ${FAILING_TOOL}` && s.kind === 3),
    { what: 'the client span' },
  );
  assert.equal(clientSpan.attrs['mcp.method.name'], 'tools/call');
  assert.equal(clientSpan.attrs['gen_ai.tool.name'], FAILING_TOOL);
  assert.equal(clientSpan.attrs['gen_ai.operation.name'], 'execute_tool');
  assert.equal(clientSpan.attrs['error.type'], 'tool_error');
  assert.equal(clientSpan.attrs['network.transport'], STDIO ? 'pipe' : 'tcp');
  assert.match(clientSpan.attrs['jsonrpc.request.id'], /^\d+$/);
  if (!STDIO) assert.equal(typeof clientSpan.attrs['mcp.session.id'], 'string');
  assert.equal(clientSpan.status.code, 2);
  assert.match(clientSpan.traceId, /^[0-9a-f]{32}$/);
  assert.match(clientSpan.spanId, /^[0-9a-f]{16}$/);
  assert.equal(clientSpan.resource['service.name'], 'node-client');
  assert.equal(clientSpan.resource['service.version'], '1.2.3');
  assert.equal(clientSpan.resource['autoheal.source'], 'node');
  const event = clientSpan.events.find((e) => e.name === 'exception');
  assert.ok(event, 'exception event on the client span');
  assert.equal(event.attrs['exception.type'], 'McpToolError');
  assert.match(event.attrs['exception.message'], FAILING_MESSAGE);
  // The call site is in the stack, so the issue points at the app's code.
  assert.match(event.attrs['exception.stacktrace'], /node-mcp\.test\.mjs:\d+:\d+/);

  // The server's span is a child of the client span in the same trace. This receiver reads
  // OTLP/JSON only, so a swapped server exporting protobuf (the Python example) is checked
  // end to end in service.test.mjs instead.
  if (usesDefaultServer()) {
    const serverSpan = await receiver.waitFor(
      () => spansOfTrace(clientSpan.traceId).find((s) => s.kind === 2),
      { what: 'the server span in the client trace' },
    );
    assert.equal(serverSpan.parentSpanId, clientSpan.spanId);
    assert.notEqual(serverSpan.resource['service.name'], 'node-client');
    const seen = server.traceparents().filter((t) => t.target === FAILING_TOOL);
    assert.equal(seen.at(-1).traceparent, `00-${clientSpan.traceId}-${clientSpan.spanId}-01`);
    assert.equal(serverSpan.status.code, 2);
    assert.ok(serverSpan.events.some((e) => e.name === 'exception' && /parseInventory/.test(e.attrs['exception.stacktrace'])));
  }

  const excLog = await receiver.waitFor(
    (r) => r.logs().find((l) => l.traceId === clientSpan.traceId && l.attrs['exception.type'] === 'McpToolError'),
    { what: 'the exception log record' },
  );
  assert.equal(excLog.spanId, clientSpan.spanId);
  assert.equal(excLog.severityNumber, 17);
  assert.equal(excLog.eventName, 'exception');
  assert.equal(excLog.attrs['gen_ai.tool.name'], FAILING_TOOL);
  assert.match(excLog.attrs['exception.stacktrace'], /McpToolError/);

  // Console lines logged before the call are part of the same trace, in order, before the error.
  const consoleLogs = receiver.logs().filter((l) => l.traceId === clientSpan.traceId && l.attrs['log.origin']);
  assert.deepEqual(
    consoleLogs.map((l) => [l.severityText, l.text]),
    [
      ['INFO', 'loading cart for user 42'],
      ['WARN', 'inventory cache is cold'],
    ],
  );
  assert.ok(BigInt(consoleLogs[1].timeUnixNano) <= BigInt(excLog.timeUnixNano));
});

test('a JSON-RPC error sets error.type to the code and records the McpError', async () => {
  await assert.rejects(client.readResource({ uri: 'test://missing' }), /not found|unknown/i);
  await forceFlush();
  const span = await receiver.waitFor(
    (r) => r.spans().find((s) => s.name === 'resources/read' && s.attrs['mcp.resource.uri'] === 'test://missing'),
    { what: 'the resources/read span' },
  );
  // The TS SDK answers -32602 for an unknown resource; other servers may say -32601/-32002.
  assert.match(span.attrs['error.type'], /^-3\d{4}$/);
  if (usesDefaultServer()) assert.equal(span.attrs['error.type'], '-32602');
  assert.equal(span.attrs['rpc.response.status_code'], span.attrs['error.type']);
  assert.equal(span.status.code, 2);
  assert.match(span.status.message, /not found|unknown/i);
  const event = span.events.find((e) => e.name === 'exception');
  assert.equal(event.attrs['exception.type'], 'McpError');
  const log = await receiver.waitFor(
    (r) => r.logs().find((l) => l.traceId === span.traceId && l.attrs['exception.type'] === 'McpError'),
    { what: 'the McpError log' },
  );
  assert.equal(log.spanId, span.spanId);
  assert.match(log.attrs['exception.stacktrace'], /node-mcp\.test\.mjs/);
});

test('a successful call produces an OK client span without error attributes', async () => {
  const result = await client.callTool({ name: OK_TOOL, arguments: OK_ARGS });
  assert.notEqual(result.isError, true);
  if (usesDefaultServer()) assert.equal(result.content[0].text, 'fine');
  await forceFlush();
  const span = await receiver.waitFor(
    (r) => r.spans().find((s) => s.name === `tools/call ${OK_TOOL}` && s.kind === 3),
    { what: 'the ok span' },
  );
  assert.equal(span.attrs['error.type'], undefined);
  assert.equal(span.status.code ?? 0, 0);
  assert.equal(span.events.length, 0);
  assert.equal(receiver.logs().filter((l) => l.traceId === span.traceId && l.attrs['exception.type']).length, 0);
});

test('a transport failure is recorded with the thrown error type', async () => {
  const dead = instrumentMcpClient(new Client({ name: 'dead', version: '1.0.0' }));
  await assert.rejects(dead.connect(new StreamableHTTPClientTransport(new URL('http://127.0.0.1:1/mcp'))));
  await forceFlush();
  const span = await receiver.waitFor(
    (r) => r.spans().find((s) => s.name === 'initialize' && s.attrs['server.port'] === 1),
    { what: 'the failed initialize span' },
  );
  assert.equal(span.status.code, 2);
  assert.ok(span.attrs['error.type']);
  assert.ok(span.events.some((e) => e.name === 'exception'));
});

test('disabled at runtime: no telemetry and no injected _meta', async () => {
  const clientSpans = () => receiver.spans().filter((s) => s.resource['service.name'] === 'node-client').length;
  setEnabled(false);
  try {
    const before = clientSpans();
    await client.callTool({ name: OK_TOOL, arguments: OK_ARGS });
    await forceFlush();
    if (usesDefaultServer()) {
      assert.equal(server.traceparents().filter((t) => t.target === OK_TOOL).at(-1).traceparent, null);
    }
    assert.equal(clientSpans(), before);
  } finally {
    setEnabled(true);
  }
  // Enabled again: the next call is traced.
  const whileDisabled = clientSpans();
  await client.callTool({ name: OK_TOOL, arguments: OK_ARGS });
  await forceFlush();
  await receiver.waitFor(() => clientSpans() > whileDisabled, { what: 're-enabled tracing' });
  if (usesDefaultServer()) assert.notEqual(server.traceparents().at(-1).traceparent, null);
});

test('a traceparent the app already put into _meta becomes the parent of the client span', async () => {
  const appTraceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  await client.callTool({ name: OK_TOOL, arguments: OK_ARGS, _meta: { traceparent: `00-${appTraceId}-00f067aa0ba902b7-01` } });
  await forceFlush();
  const span = await receiver.waitFor(
    (r) => r.spans().find((s) => s.traceId === appTraceId && s.kind === 3),
    { what: 'the client span in the app trace' },
  );
  assert.equal(span.parentSpanId, '00f067aa0ba902b7');
  if (usesDefaultServer()) {
    assert.equal(server.traceparents().at(-1).traceparent, `00-${appTraceId}-${span.spanId}-01`);
  }
});
