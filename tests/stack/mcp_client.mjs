// The instrumented JavaScript MCP client of the whole-stack test, run by Node.
//   node mcp_client.mjs <js-instrumentation dir> <MCP server URL>
// Exports to OTEL_EXPORTER_OTLP_ENDPOINT (the collector). It opens one app span around connect()
// and a failing `divide` call (so the `initialize` request and the failure share a trace), then a
// second app span around a successful `add` call, and prints one JSON line with both trace ids.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [jsDir, serverUrl] = process.argv.slice(2);
if (!jsDir || !serverUrl) throw new Error('usage: mcp_client.mjs <js-instrumentation dir> <MCP server URL>');
const load = (rel) => import(pathToFileURL(join(jsDir, rel)).href);

// The same module file the SDK's dist imports, so both see one API instance.
const api = await load('node_modules/@opentelemetry/api/dist/index.mjs');
const autoheal = await load('dist/index.js');
const { Client } = await load('node_modules/@modelcontextprotocol/sdk/dist/esm/client/index.js');
const { StreamableHTTPClientTransport } = await load(
  'node_modules/@modelcontextprotocol/sdk/dist/esm/client/streamableHttp.js',
);

// What an app on the OTel Node SDK registers (the JS SDK's test helper); the MCP spans then join
// the app's active span.
const { AsyncLocalStorageContextManager } = await load('test/helpers/context-manager.mjs');
api.context.setGlobalContextManager(new AsyncLocalStorageContextManager());

autoheal.init({ serviceName: 'stack-node-client', serviceVersion: '1.0.0' });
const tracer = autoheal.getTracer();
const client = autoheal.instrumentMcpClient(new Client({ name: 'stack-node-client', version: '1.0.0' }));
const out = { errors: [] };

await tracer.startActiveSpan('checkout ratio', async (span) => {
  out.error_trace = span.spanContext().traceId;
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(serverUrl)));
    console.log('stack-node-client: asking the server to divide 7 by 0');
    const result = await client.callTool({ name: 'divide', arguments: { a: 7, b: 0 } });
    out.divide_is_error = result.isError === true;
    out.divide_text = JSON.stringify(result.content ?? []).slice(0, 500);
  } catch (err) {
    out.errors.push(`divide: ${err}`);
  } finally {
    span.end();
  }
});

await tracer.startActiveSpan('sum totals', async (span) => {
  out.ok_trace = span.spanContext().traceId;
  try {
    const result = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
    out.add_is_error = result.isError === true;
    out.add_text = JSON.stringify(result.content ?? []).slice(0, 500);
  } catch (err) {
    out.errors.push(`add: ${err}`);
  } finally {
    span.end();
  }
});

await client.close().catch((err) => out.errors.push(`close: ${err}`));
await autoheal.forceFlush(10000);
out.stats = autoheal.getSdk()?.stats?.() ?? null;
await autoheal.shutdown(10000);
console.log(`RESULT ${JSON.stringify(out)}`);
