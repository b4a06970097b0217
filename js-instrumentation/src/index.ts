import type { Attributes, Context, Tracer } from '@opentelemetry/api';

import type { AutohealOptions } from './config.js';
import { instrumentMcpClientWith, type McpClientLike } from './mcp.js';
import { AutohealSdk } from './sdk.js';
import { AutohealTracer } from './tracer.js';

export type { AutohealOptions, ConsoleLevel } from './config.js';
export type { CaptureOptions } from './sdk.js';
export type { McpClientLike, McpRequest } from './mcp.js';
export { extractContext, injectContext } from './propagation.js';
export { VERSION } from './version.js';
export { AutohealSdk };

let current: AutohealSdk | undefined;

/**
 * Starts capturing: global error handlers, console records, and the exporter. Calling it again
 * replaces the previous instance (its hooks are removed first).
 */
export function init(options: AutohealOptions = {}): AutohealSdk {
  // The old instance's hooks go at once; its queued data still gets its normal export time.
  if (current) void current.shutdown();
  const sdk = new AutohealSdk(options);
  current = sdk;
  try {
    sdk.start();
  } catch {
    // A partially installed SDK still exports what it records.
  }
  return sdk;
}

export function getSdk(): AutohealSdk | undefined {
  return current;
}

/** Instruments an `@modelcontextprotocol/sdk` Client in place (inert until init()). */
export function instrumentMcpClient<T extends McpClientLike>(client: T): T {
  return instrumentMcpClientWith(client, () => current);
}

/** Records a handled error as an error span plus correlated exception log; returns its trace id. */
export function captureException(err: unknown, attributes?: Attributes, context?: Context): string | undefined {
  return current?.captureException(err, { attributes, context });
}

export function setEnabled(enabled: boolean): void {
  current?.setEnabled(enabled);
}

export function isEnabled(): boolean {
  return current !== undefined && current.isEnabled();
}

/** Sends everything queued; never rejects. */
export function forceFlush(timeoutMillis?: number): Promise<void> {
  return current ? current.flush(timeoutMillis) : Promise.resolve();
}

/** Removes all hooks and flushes; the instrumented MCP clients become pass-through. */
export function shutdown(timeoutMillis?: number): Promise<void> {
  const sdk = current;
  current = undefined;
  return sdk ? sdk.shutdown(timeoutMillis) : Promise.resolve();
}

const tracer = new AutohealTracer(
  () => (current ? current.config.sampleRatio : 0),
  () => current !== undefined && current.isEnabled(),
  (data) => current?.exportSpan(data),
);

/** An OTel API Tracer exporting through this package (non-recording until init()). */
export function getTracer(): Tracer {
  return tracer;
}
