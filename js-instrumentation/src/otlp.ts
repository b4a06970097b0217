// OTLP/JSON encoding (opentelemetry-proto ProtoJSON mapping): ids are lowercase hex, 64-bit
// integers are decimal strings, enums are numbers. Only what this package produces is covered.
// Everything a user or an error can put in (span and event names, status messages, log bodies,
// attribute values of the resource, spans, events, links and logs) is scrubbed of secrets here,
// at export time (off the app's hot path), with the project's shared rules (scrub.ts).
import type { AttributeValue, Attributes } from '@opentelemetry/api';

import { scrubber } from './scrub.js';
import { millisToNanoString } from './time.js';
import { SCOPE_NAME, VERSION } from './version.js';

export interface SpanEventData {
  name: string;
  timeMs: number;
  attributes: Attributes;
}

export interface SpanData {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  flags: number;
  name: string;
  /** @opentelemetry/api SpanKind (OTLP's value is one higher). */
  kind: number;
  startMs: number;
  endMs: number;
  attributes: Attributes;
  events: SpanEventData[];
  links: Array<{ traceId: string; spanId: string; attributes: Attributes }>;
  statusCode: number;
  statusMessage?: string;
  droppedAttributes: number;
  droppedEvents: number;
}

export interface LogData {
  timeMs: number;
  observedMs: number;
  severityNumber: number;
  severityText: string;
  body?: string;
  attributes: Attributes;
  eventName?: string;
  traceId?: string;
  spanId?: string;
  flags?: number;
}

type AnyValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number }
  | { arrayValue: { values: AnyValue[] } };

/** What replaces a value the scrubber failed on: the value is dropped, never sent raw. */
const SCRUB_FAILED = '[redacted:scrub_error]';

/** A text without secrets; a scrubbing failure must never break the app nor leak the text. */
export function scrubText(text: string): string;
export function scrubText(text: string | undefined): string | undefined;
export function scrubText(text: string | undefined): string | undefined {
  if (!text) return text;
  try {
    return scrubber().text(text);
  } catch {
    return SCRUB_FAILED;
  }
}

function scrubAttribute(key: string, value: unknown): unknown {
  try {
    return scrubber().value(value, key);
  } catch {
    return SCRUB_FAILED;
  }
}

function anyValue(v: unknown): AnyValue {
  switch (typeof v) {
    case 'string':
      return { stringValue: v };
    case 'boolean':
      return { boolValue: v };
    case 'number':
      return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
    default:
      if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
      return { stringValue: String(v) };
  }
}

export function encodeAttributes(attrs: Attributes | undefined): Array<{ key: string; value: AnyValue }> {
  const out: Array<{ key: string; value: AnyValue }> = [];
  if (!attrs) return out;
  for (const key of Object.keys(attrs)) {
    const value: AttributeValue | undefined = attrs[key];
    if (value === undefined || value === null) continue;
    out.push({ key, value: anyValue(scrubAttribute(key, value)) });
  }
  return out;
}

const SCOPE = { name: SCOPE_NAME, version: VERSION };

export function encodeTraces(resource: Attributes, spans: SpanData[]): string {
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: encodeAttributes(resource) },
        scopeSpans: [
          {
            scope: SCOPE,
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId || undefined,
              traceState: s.traceState || undefined,
              flags: s.flags,
              name: scrubText(s.name),
              kind: s.kind + 1,
              startTimeUnixNano: millisToNanoString(s.startMs),
              endTimeUnixNano: millisToNanoString(s.endMs),
              attributes: encodeAttributes(s.attributes),
              droppedAttributesCount: s.droppedAttributes || undefined,
              events: s.events.map((e) => ({
                timeUnixNano: millisToNanoString(e.timeMs),
                name: scrubText(e.name),
                attributes: encodeAttributes(e.attributes),
              })),
              droppedEventsCount: s.droppedEvents || undefined,
              links: s.links.map((l) => ({
                traceId: l.traceId,
                spanId: l.spanId,
                attributes: encodeAttributes(l.attributes),
              })),
              status: s.statusCode ? { code: s.statusCode, message: scrubText(s.statusMessage) || undefined } : {},
            })),
          },
        ],
      },
    ],
  });
}

export function encodeLogs(resource: Attributes, logs: LogData[]): string {
  return JSON.stringify({
    resourceLogs: [
      {
        resource: { attributes: encodeAttributes(resource) },
        scopeLogs: [
          {
            scope: SCOPE,
            logRecords: logs.map((r) => ({
              timeUnixNano: millisToNanoString(r.timeMs),
              observedTimeUnixNano: millisToNanoString(r.observedMs),
              severityNumber: r.severityNumber,
              severityText: r.severityText,
              body: r.body === undefined ? undefined : { stringValue: scrubText(r.body) },
              attributes: encodeAttributes(r.attributes),
              eventName: r.eventName,
              traceId: r.traceId,
              spanId: r.spanId,
              flags: r.flags,
            })),
          },
        ],
      },
    ],
  });
}
