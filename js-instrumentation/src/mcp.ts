// Client-side MCP instrumentation per the MCP semantic conventions (semantic-conventions-genai
// docs/gen-ai/mcp.md): one CLIENT span per request, W3C context in `params._meta` (SEP-414).
//
// The hook is `client.request`: every Client method (callTool, readResource, listTools, the
// initialize handshake…) goes through it, and Protocol.request spreads `request.params` into
// the JSON-RPC message it hands to the transport, so a rewritten `params._meta` is what goes
// on the wire. The JSON-RPC id is assigned synchronously from `_requestMessageId` inside it.
import { context as apiContext, SpanKind, trace, type Attributes, type Span } from '@opentelemetry/api';

import { extractContext, injectContext } from './propagation.js';
import type { AutohealSdk } from './sdk.js';
import { exceptionAttributes, safeString } from './span.js';

export interface McpRequest {
  method: string;
  params?: Record<string, unknown> & { _meta?: Record<string, unknown> };
  [key: string]: unknown;
}

/** The part of `@modelcontextprotocol/sdk`'s Client (1.x) this package relies on. */
export interface McpClientLike {
  request(request: McpRequest, resultSchema?: unknown, options?: unknown): Promise<unknown>;
}

const INSTRUMENTED = Symbol.for('otel-autoheal.mcp.instrumented');
const MAX_RESULT_TEXT = 4000;

type RequestFn = McpClientLike['request'];

interface ClientInternals {
  _requestMessageId?: unknown;
  transport?: unknown;
  _transport?: unknown;
}

type TransportInternals = { constructor?: { name?: string }; _url?: unknown; sessionId?: unknown; protocolVersion?: unknown };

// What a transport says about the connection never changes, so it is derived once per transport.
const staticTransportAttrs = new WeakMap<object, Attributes>();

function describeTransport(t: TransportInternals): Attributes {
  const attrs: Attributes = {};
  const name = t.constructor?.name ?? '';
  if (/Stdio/.test(name)) attrs['network.transport'] = 'pipe';
  else if (/Http|SSE|WebSocket/i.test(name) || t._url) attrs['network.transport'] = 'tcp';
  const url = t._url as { hostname?: string; port?: string; protocol?: string } | undefined;
  if (url && typeof url.hostname === 'string') {
    attrs['server.address'] = url.hostname;
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : url.protocol === 'http:' ? 80 : NaN));
    if (Number.isInteger(port)) attrs['server.port'] = port;
  }
  return attrs;
}

function transportAttributes(client: ClientInternals, attrs: Attributes): void {
  try {
    const t = (client.transport ?? client._transport) as TransportInternals | undefined;
    if (!t || typeof t !== 'object') return;
    let fixed = staticTransportAttrs.get(t);
    if (!fixed) {
      fixed = describeTransport(t);
      staticTransportAttrs.set(t, fixed);
    }
    Object.assign(attrs, fixed);
    if (typeof t.sessionId === 'string') attrs['mcp.session.id'] = t.sessionId;
    if (typeof t.protocolVersion === 'string') attrs['mcp.protocol.version'] = t.protocolVersion;
  } catch {
    // Attributes are best-effort.
  }
}

function requestAttributes(client: ClientInternals, request: McpRequest, captureArgs: boolean): { name: string; attrs: Attributes } {
  const method = String(request.method);
  const params = request.params ?? {};
  const attrs: Attributes = { 'mcp.method.name': method };
  let name = method;
  if (method === 'tools/call' && typeof params.name === 'string') {
    name = `${method} ${params.name}`;
    attrs['gen_ai.tool.name'] = params.name;
    attrs['gen_ai.operation.name'] = 'execute_tool';
    if (captureArgs && params.arguments !== undefined) attrs['gen_ai.tool.call.arguments'] = safeString(params.arguments);
  } else if (method === 'prompts/get' && typeof params.name === 'string') {
    name = `${method} ${params.name}`;
    attrs['gen_ai.prompt.name'] = params.name;
  } else if (typeof params.uri === 'string') {
    // URIs are high-cardinality, so they stay out of the span name.
    attrs['mcp.resource.uri'] = params.uri;
  }
  if (typeof client._requestMessageId === 'number') attrs['jsonrpc.request.id'] = String(client._requestMessageId);
  transportAttributes(client, attrs);
  return { name, attrs };
}

function toolErrorText(result: { content?: unknown }): string {
  try {
    const parts: string[] = [];
    if (Array.isArray(result.content)) {
      for (const c of result.content as Array<{ type?: unknown; text?: unknown }>) {
        if (c && c.type === 'text' && typeof c.text === 'string') parts.push(c.text);
      }
    }
    const text = parts.join('\n') || 'tool returned isError';
    return text.length > MAX_RESULT_TEXT ? text.slice(0, MAX_RESULT_TEXT) + '…' : text;
  } catch {
    return 'tool returned isError';
  }
}

/** Frames of where the app made the call, without the frames of this package. */
function callSite(holder: { stack?: string }): string {
  try {
    const lines = (holder.stack ?? '').split('\n');
    return lines.filter((l) => /^\s+at /.test(l) || /@/.test(l)).join('\n');
  } catch {
    return '';
  }
}

function withCallSite(stack: string | undefined, site: string): string | undefined {
  if (!site) return stack;
  if (!stack) return site;
  return `${stack}\n${site}`;
}

function handleResult(sdk: AutohealSdk, span: Span, result: unknown, attrs: Attributes, site: { stack?: string }): void {
  if (result && typeof result === 'object' && (result as { isError?: unknown }).isError === true) {
    const message = toolErrorText(result as { content?: unknown });
    span.setAttribute('error.type', 'tool_error');
    const tool = typeof attrs['gen_ai.tool.name'] === 'string' ? attrs['gen_ai.tool.name'] : 'unknown';
    const frames = callSite(site);
    const exc: Attributes = {
      'exception.type': 'McpToolError',
      'exception.message': message,
    };
    const stack = withCallSite(`McpToolError: tool ${tool} failed: ${message.split('\n')[0]}`, frames);
    if (stack) exc['exception.stacktrace'] = stack;
    sdk.failSpan(span, exc, message, { ...attrs, 'error.type': 'tool_error' });
  }
}

function handleError(sdk: AutohealSdk, span: Span, err: unknown, attrs: Attributes, site: { stack?: string }): void {
  const exc = exceptionAttributes(err) as unknown as Attributes;
  const code = err && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  // McpError carries the JSON-RPC error code (also for the SDK's own timeout, -32001).
  const errorType = typeof code === 'number' ? String(code) : String(exc['exception.type']);
  span.setAttribute('error.type', errorType);
  if (typeof code === 'number') span.setAttribute('rpc.response.status_code', String(code));
  // The error was built where the response arrived; the app's frames are only in the call site.
  const stack = withCallSite(exc['exception.stacktrace'] as string | undefined, callSite(site));
  if (stack) exc['exception.stacktrace'] = stack;
  sdk.failSpan(span, exc, String(exc['exception.message']), { ...attrs, 'error.type': errorType });
}

/**
 * Instruments an `@modelcontextprotocol/sdk` Client in place and returns it. Safe to call more
 * than once, before or after connect(); inert while the SDK is not initialised or disabled.
 */
export function instrumentMcpClientWith<T extends McpClientLike>(client: T, getSdk: () => AutohealSdk | undefined): T {
  try {
    const c = client as T & { [INSTRUMENTED]?: boolean };
    if (!c || typeof c.request !== 'function' || c[INSTRUMENTED]) return client;
    const original: RequestFn = c.request;
    const wrapped = function request(this: McpClientLike, request: McpRequest, resultSchema?: unknown, options?: unknown): Promise<unknown> {
      const sdk = getSdk();
      if (!sdk || !sdk.isEnabled() || !request || typeof request !== 'object') {
        return original.call(this, request, resultSchema, options);
      }
      let span: Span;
      let attrs: Attributes;
      let outgoing: McpRequest;
      const site: { stack?: string } = {};
      try {
        const ra = requestAttributes(this as ClientInternals, request, sdk.config.captureToolArguments);
        attrs = ra.attrs;
        let parent = apiContext.active();
        // Without an active span, a traceparent the app put into _meta itself is the parent.
        if (!trace.getSpanContext(parent) && request.params?._meta) parent = extractContext(request.params._meta, parent);
        span = sdk.tracer.startSpan(ra.name, { kind: SpanKind.CLIENT, attributes: attrs }, parent);
        const meta: Record<string, unknown> = { ...(request.params?._meta ?? {}) };
        injectContext(trace.setSpan(parent, span), meta);
        outgoing = { ...request, params: { ...(request.params ?? {}), _meta: meta } };
        // Captured now because the response (and any McpError) arrives on another stack.
        if (sdk.config.captureCallSite) {
          const ErrorCtor = Error as unknown as { captureStackTrace?: (o: object, f: unknown) => void };
          if (typeof ErrorCtor.captureStackTrace === 'function') ErrorCtor.captureStackTrace(site, wrapped);
          else site.stack = new Error().stack;
        }
      } catch {
        return original.call(this, request, resultSchema, options);
      }
      let pending: Promise<unknown>;
      try {
        pending = original.call(this, outgoing, resultSchema, options);
      } catch (err) {
        try {
          handleError(sdk, span, err, attrs, site);
          span.end();
        } catch {
          // The app gets its own error below, untouched.
        }
        throw err;
      }
      if (!pending || typeof (pending as { then?: unknown }).then !== 'function') {
        span.end();
        return pending;
      }
      return pending.then(
        (result) => {
          try {
            handleResult(sdk, span, result, attrs, site);
            span.end();
          } catch {
            // The result is the app's, whatever happens to its telemetry.
          }
          return result;
        },
        (err: unknown) => {
          try {
            handleError(sdk, span, err, attrs, site);
            span.end();
          } catch {
            // As above.
          }
          throw err;
        },
      );
    };
    c.request = wrapped as T['request'];
    Object.defineProperty(c, INSTRUMENTED, { value: true, enumerable: false });
  } catch {
    // Leave the client as it was.
  }
  return client;
}
