import {
  SpanKind,
  SpanStatusCode,
  type Attributes,
  type AttributeValue,
  type Exception,
  type Link,
  type Span,
  type SpanContext,
  type SpanStatus,
  type TimeInput,
} from '@opentelemetry/api';

import type { SpanData } from './otlp.js';
import { toMillis } from './time.js';

const MAX_ATTRIBUTES = 128;
const MAX_EVENTS = 128;
const MAX_VALUE_LENGTH = 8192;

function clampValue(v: AttributeValue): AttributeValue {
  return typeof v === 'string' && v.length > MAX_VALUE_LENGTH ? v.slice(0, MAX_VALUE_LENGTH) : v;
}

export interface ExceptionAttributes {
  'exception.type': string;
  'exception.message': string;
  'exception.stacktrace'?: string;
}

/** Maps anything thrown to the OTel exception attributes; never throws. */
export function exceptionAttributes(err: unknown, fallbackType = 'Error'): ExceptionAttributes {
  try {
    if (err !== null && typeof err === 'object') {
      const e = err as { name?: unknown; message?: unknown; stack?: unknown; constructor?: { name?: unknown } };
      const ctorName = e.constructor && typeof e.constructor.name === 'string' ? e.constructor.name : undefined;
      const type = typeof e.name === 'string' && e.name ? e.name : ctorName && ctorName !== 'Object' ? ctorName : fallbackType;
      const message = typeof e.message === 'string' ? e.message : safeString(err);
      const out: ExceptionAttributes = { 'exception.type': type, 'exception.message': message };
      if (typeof e.stack === 'string' && e.stack) out['exception.stacktrace'] = e.stack;
      return out;
    }
    return { 'exception.type': fallbackType, 'exception.message': safeString(err) };
  } catch {
    return { 'exception.type': fallbackType, 'exception.message': '<unprintable>' };
  }
}

export function safeString(v: unknown): string {
  try {
    if (typeof v === 'string') return v;
    if (v !== null && typeof v === 'object') {
      const s = JSON.stringify(v);
      if (typeof s === 'string') return s;
    }
    return String(v);
  } catch {
    try {
      return Object.prototype.toString.call(v);
    } catch {
      return '<unprintable>';
    }
  }
}

/** A recording span; on end() it hands its data to the sink exactly once. */
export class RecordingSpan implements Span {
  private readonly data: SpanData;
  private ended = false;
  private attributeCount = 0;

  constructor(
    private readonly ctx: SpanContext,
    name: string,
    kind: SpanKind,
    parentSpanId: string | undefined,
    attributes: Attributes | undefined,
    startTime: TimeInput | undefined,
    links: Link[] | undefined,
    private readonly onEnd: (data: SpanData) => void,
  ) {
    this.data = {
      traceId: ctx.traceId,
      spanId: ctx.spanId,
      parentSpanId,
      traceState: ctx.traceState ? ctx.traceState.serialize() : undefined,
      flags: ctx.traceFlags,
      name,
      kind: kind ?? SpanKind.INTERNAL,
      startMs: toMillis(startTime),
      endMs: 0,
      attributes: {},
      events: [],
      links: [],
      statusCode: SpanStatusCode.UNSET,
      droppedAttributes: 0,
      droppedEvents: 0,
    };
    if (attributes) this.setAttributes(attributes);
    if (links) this.addLinks(links);
  }

  spanContext(): SpanContext {
    return this.ctx;
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (this.ended || value === undefined || value === null) return this;
    const attrs = this.data.attributes;
    if (!(key in attrs)) {
      if (this.attributeCount >= MAX_ATTRIBUTES) {
        this.data.droppedAttributes++;
        return this;
      }
      this.attributeCount++;
    }
    attrs[key] = clampValue(value);
    return this;
  }

  setAttributes(attributes: Attributes): this {
    for (const k of Object.keys(attributes)) {
      const v = attributes[k];
      if (v !== undefined) this.setAttribute(k, v);
    }
    return this;
  }

  addEvent(name: string, attributesOrStartTime?: Attributes | TimeInput, startTime?: TimeInput): this {
    if (this.ended) return this;
    if (this.data.events.length >= MAX_EVENTS) {
      this.data.droppedEvents++;
      return this;
    }
    let attributes: Attributes = {};
    if (
      attributesOrStartTime instanceof Date ||
      Array.isArray(attributesOrStartTime) ||
      typeof attributesOrStartTime === 'number'
    ) {
      startTime = attributesOrStartTime as TimeInput;
    } else if (attributesOrStartTime) {
      attributes = { ...(attributesOrStartTime as Attributes) };
    }
    this.data.events.push({ name, timeMs: toMillis(startTime), attributes });
    return this;
  }

  addLink(link: Link): this {
    if (!this.ended) {
      this.data.links.push({ traceId: link.context.traceId, spanId: link.context.spanId, attributes: link.attributes ?? {} });
    }
    return this;
  }

  addLinks(links: Link[]): this {
    for (const l of links) this.addLink(l);
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (this.ended) return this;
    // OK is final per the API spec; UNSET never overrides.
    if (this.data.statusCode === SpanStatusCode.OK || status.code === SpanStatusCode.UNSET) return this;
    this.data.statusCode = status.code;
    this.data.statusMessage = status.code === SpanStatusCode.ERROR ? status.message : undefined;
    return this;
  }

  updateName(name: string): this {
    if (!this.ended) this.data.name = name;
    return this;
  }

  end(endTime?: TimeInput): void {
    if (this.ended) return;
    this.ended = true;
    this.data.endMs = Math.max(toMillis(endTime), this.data.startMs);
    try {
      this.onEnd(this.data);
    } catch {
      // The sink is ours; a bug there must still not reach the caller.
    }
  }

  isRecording(): boolean {
    return !this.ended;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attrs = exceptionAttributes(exception);
    this.addEvent('exception', attrs as unknown as Attributes, time);
  }
}
