// Starts the MCP server a test talks to. The command is swappable so the same tests can run
// against another implementation (e.g. the Python example server):
//   AUTOHEAL_TEST_MCP_SERVER='["python3","-m","examples.mcp_server","--port","0"]'
// Contract: listen on 127.0.0.1 (free port), print a line containing `http://127.0.0.1:PORT/mcp`,
// export OTLP to OTEL_EXPORTER_OTLP_ENDPOINT, serve a tool named $AUTOHEAL_TEST_MCP_FAILING_TOOL
// (default `fail`) that raises, and answer CORS for browser origins. The Python example server:
//   AUTOHEAL_TEST_MCP_SERVER='["python","examples/mcp_server/server.py","--transport","http","--port","0"]'
//   AUTOHEAL_TEST_MCP_FAILING_TOOL=divide AUTOHEAL_TEST_MCP_FAILING_ARGS='{"a":1,"b":0}'
//   AUTOHEAL_TEST_MCP_FAILING_MESSAGE='division by zero'
//   AUTOHEAL_TEST_MCP_OK_TOOL=add AUTOHEAL_TEST_MCP_OK_ARGS='{"a":1,"b":2}'
// With AUTOHEAL_TEST_MCP_TRANSPORT=stdio the command is instead spawned by the SDK's
// StdioClientTransport for each connect() (Node tests only; the browser needs HTTP).
import { fileURLToPath } from 'node:url';

import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { startProcess } from './processes.mjs';
import { waitFor } from './receiver.mjs';

// Tool names, arguments and the failing tool's expected message, all swappable with the server.
export const FAILING_TOOL = process.env.AUTOHEAL_TEST_MCP_FAILING_TOOL ?? 'fail';
export const FAILING_ARGS = JSON.parse(process.env.AUTOHEAL_TEST_MCP_FAILING_ARGS ?? '{"sku":"A-1"}');
export const FAILING_MESSAGE = new RegExp(process.env.AUTOHEAL_TEST_MCP_FAILING_MESSAGE ?? 'inventory lookup failed for A-1');
export const OK_TOOL = process.env.AUTOHEAL_TEST_MCP_OK_TOOL ?? 'ok';
export const OK_ARGS = JSON.parse(process.env.AUTOHEAL_TEST_MCP_OK_ARGS ?? '{"text":"fine"}');
export const DEFAULT_SERVER = [process.execPath, fileURLToPath(new URL('../fixtures/mcp-server.mjs', import.meta.url))];

export function serverCommand() {
  const raw = process.env.AUTOHEAL_TEST_MCP_SERVER;
  return raw ? JSON.parse(raw) : DEFAULT_SERVER;
}

export function usesDefaultServer() {
  return !process.env.AUTOHEAL_TEST_MCP_SERVER;
}

export const STDIO = process.env.AUTOHEAL_TEST_MCP_TRANSPORT === 'stdio';

export async function startMcpServer({ otlpEndpoint, serviceName = 'test-mcp-server', env = {} } = {}) {
  const [cmd, ...args] = serverCommand();
  const serverEnv = { OTEL_EXPORTER_OTLP_ENDPOINT: otlpEndpoint, OTEL_SERVICE_NAME: serviceName, ...env };
  if (STDIO) {
    return {
      url: undefined,
      transport: () => new StdioClientTransport({ command: cmd, args, env: { ...process.env, ...serverEnv }, stderr: 'inherit' }),
      traceparents: () => [],
      stop: async () => undefined,
    };
  }
  const proc = startProcess(cmd, args, { env: serverEnv });
  const url = await waitFor(
    () => {
      if (proc.child.exitCode !== null) throw new Error(`MCP server exited early: ${proc.stderr}`);
      const m = /(http:\/\/127\.0\.0\.1:\d+\/mcp)\b/.exec(proc.stdout + proc.stderr);
      return m && m[1];
    },
    { timeout: 30000, what: 'the MCP server URL' },
  );
  return {
    url,
    proc,
    transport: () => new StreamableHTTPClientTransport(new URL(url)),
    /** Parsed `TRACEPARENT {...}` lines printed by the default test server. */
    traceparents() {
      return proc.stdout
        .split('\n')
        .filter((l) => l.startsWith('TRACEPARENT '))
        .map((l) => JSON.parse(l.slice('TRACEPARENT '.length)));
    },
    stop: () => proc.kill(),
  };
}
