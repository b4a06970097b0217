// End to end against the real otel-autoheal service. Needs the Python package importable by
// AUTOHEAL_PYTHON; when it is not, the tests are reported as skipped (never as passed), and
// AUTOHEAL_REQUIRE_SERVICE=1 turns that into a failure (CI sets it).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';

import { forceFlush, init, instrumentMcpClient, shutdown } from '../dist/index.js';
import { autohealAvailable, PYTHON, startAutoheal } from './helpers/autoheal.mjs';
import { FAILING_ARGS, FAILING_MESSAGE, FAILING_TOOL, startMcpServer, usesDefaultServer } from './helpers/mcp.mjs';
import { killAll } from './helpers/processes.mjs';

const available = await autohealAvailable();
if (!available && process.env.AUTOHEAL_REQUIRE_SERVICE === '1') {
  throw new Error(`otel_autoheal is not importable with AUTOHEAL_PYTHON=${PYTHON}`);
}
const skip = available ? false : `otel_autoheal not importable with ${PYTHON} (set AUTOHEAL_PYTHON)`;

let service;
let mcp;
let client;

before(async () => {
  if (skip) return;
  // The client's and the MCP server's processes export their sides of a trace separately: on a
  // busy machine a second can pass between them, and a trace_wait of 1 s then split the trace.
  service = await startAutoheal({ traceWait: 4 });
  mcp = await startMcpServer({ otlpEndpoint: service.httpEndpoint, serviceName: 'autoheal-test-mcp-server' });
  init({ endpoint: service.httpEndpoint, serviceName: 'node-mcp-client', captureGlobalErrors: false });
  client = instrumentMcpClient(new Client({ name: 'svc-client', version: '1.0.0' }));
  await client.connect(mcp.transport());
});

after(async () => {
  await client?.close().catch(() => undefined);
  await shutdown(2000);
  await mcp?.stop();
  await service?.stop();
  await killAll();
});

test('a failing tool call yields one issue for the shared trace, with the client as a symptom and its logs', { skip }, async () => {
  console.log('reserving stock for order 77');
  const result = await client.callTool({ name: FAILING_TOOL, arguments: FAILING_ARGS });
  assert.equal(result.isError, true);
  await forceFlush();
  const find = (list) => list.find((i) => /McpToolError/.test(i.body) && /reserving stock for order 77/.test(i.body));
  const issue = find(await service.waitForIssues(find));
  assert.equal(issue.trace_ids.length, 1);
  const traceId = issue.trace_ids[0];
  assert.match(traceId, /^[0-9a-f]{32}$/);
  assert.match(issue.body, new RegExp(traceId));
  assert.match(issue.body, FAILING_MESSAGE);
  assert.match(issue.body, /node-mcp-client/, 'the client span shows up in the issue');
  if (usesDefaultServer()) {
    // The server received the client's trace context, and the service grouped both sides as one trace.
    const sent = mcp.traceparents().filter((t) => t.target === FAILING_TOOL).at(-1).traceparent;
    assert.equal(sent.split('-')[1], traceId);
    assert.equal(issue.service, 'autoheal-test-mcp-server');
    assert.match(issue.body, /at parseInventory \(/);
  }
});

test('a JSON-RPC error seen only by the client becomes a node issue with the app call site', { skip }, async () => {
  console.warn('opening the price list');
  await assert.rejects(client.readResource({ uri: 'test://missing-price-list' }));
  await forceFlush();
  const find = (list) => list.find((i) => i.exception_type === 'McpError' && i.service === 'node-mcp-client');
  const issue = find(await service.waitForIssues(find));
  assert.equal(issue.source, 'node');
  assert.match(issue.body, /service\.test\.mjs/, 'the call site is in the rendered stack');
  assert.match(issue.body, /opening the price list/);
  assert.match(issue.body, /missing-price-list/);
});
