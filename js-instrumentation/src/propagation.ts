// W3C trace-context (traceparent/tracestate) on plain carrier objects such as MCP `params._meta`.
// Hand-written instead of @opentelemetry/core's propagator to keep the browser bundle small.
import { ROOT_CONTEXT, trace, TraceFlags, createTraceState, isSpanContextValid, type Context } from '@opentelemetry/api';

const TRACEPARENT_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

export const TRACEPARENT = 'traceparent';
export const TRACESTATE = 'tracestate';

/** Writes traceparent (and tracestate when present) of the span in `ctx` into `carrier`. */
export function injectContext(ctx: Context, carrier: Record<string, unknown>): void {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !isSpanContextValid(sc)) return;
  carrier[TRACEPARENT] = `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & TraceFlags.SAMPLED).toString(16)}`;
  if (sc.traceState) {
    const ts = sc.traceState.serialize();
    if (ts) carrier[TRACESTATE] = ts;
  }
}

/** Returns a context whose remote parent is the traceparent in `carrier`, or `base` when none is valid. */
export function extractContext(carrier: unknown, base: Context = ROOT_CONTEXT): Context {
  if (!carrier || typeof carrier !== 'object') return base;
  const c = carrier as Record<string, unknown>;
  const tp = c[TRACEPARENT];
  if (typeof tp !== 'string') return base;
  const m = TRACEPARENT_RE.exec(tp.trim());
  // Version ff is forbidden; version 00 must not carry extra fields.
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5])) return base;
  const sc = {
    traceId: m[2],
    spanId: m[3],
    traceFlags: parseInt(m[4], 16),
    isRemote: true,
    traceState: typeof c[TRACESTATE] === 'string' ? createTraceState(c[TRACESTATE] as string) : undefined,
  };
  if (!isSpanContextValid(sc)) return base;
  return trace.setSpanContext(base, sc);
}
