import {
  context as apiContext,
  trace,
  TraceFlags,
  isSpanContextValid,
  type Context,
  type Span,
  type SpanContext,
  type SpanOptions,
  type Tracer,
} from '@opentelemetry/api';

import { newSpanId, newTraceId } from './ids.js';
import type { SpanData } from './otlp.js';
import { RecordingSpan } from './span.js';

/**
 * Parent-based trace-id-ratio sampling: a root's decision comes from the low 52 bits of the trace
 * id, children follow their parent's sampled flag, so one trace is kept or dropped as a whole.
 */
export function sampledByRatio(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  return parseInt(traceId.slice(-13), 16) / 2 ** 52 < ratio;
}

export class AutohealTracer implements Tracer {
  constructor(
    private readonly getRatio: () => number,
    private readonly isEnabled: () => boolean,
    private readonly onEnd: (data: SpanData) => void,
  ) {}

  startSpan(name: string, options: SpanOptions = {}, ctx: Context = apiContext.active()): Span {
    const parent = options.root ? undefined : trace.getSpanContext(ctx);
    const hasParent = parent !== undefined && isSpanContextValid(parent);
    const traceId = hasParent ? parent.traceId : newTraceId();
    const sampled = this.isEnabled() && (hasParent ? (parent.traceFlags & TraceFlags.SAMPLED) !== 0 : sampledByRatio(traceId, this.getRatio()));
    const sc: SpanContext = {
      traceId,
      spanId: newSpanId(),
      traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
      traceState: hasParent ? parent.traceState : undefined,
    };
    if (!sampled) return trace.wrapSpanContext(sc);
    return new RecordingSpan(
      sc,
      name,
      options.kind ?? 0,
      hasParent ? parent.spanId : undefined,
      options.attributes,
      options.startTime,
      options.links,
      this.onEnd,
    );
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, ctx: Context, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, a?: unknown, b?: unknown, c?: unknown): ReturnType<F> {
    let options: SpanOptions = {};
    let ctx: Context = apiContext.active();
    let fn: F;
    if (typeof a === 'function') fn = a as F;
    else if (typeof b === 'function') {
      options = (a as SpanOptions) ?? {};
      fn = b as F;
    } else {
      options = (a as SpanOptions) ?? {};
      ctx = (b as Context) ?? ctx;
      fn = c as F;
    }
    const span = this.startSpan(name, options, ctx);
    return apiContext.with(trace.setSpan(ctx, span), fn as (s: Span) => ReturnType<F>, undefined, span);
  }
}
