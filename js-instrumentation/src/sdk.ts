import {
  context as apiContext,
  trace,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  isSpanContextValid,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';

import { installGlobalHandlers } from './capture.js';
import { DEBUG_IDS_ATTRIBUTE, debugIdsFor } from './debugids.js';
import { resolveConfig, type AutohealOptions, type ResolvedConfig } from './config.js';
import { formatConsoleArgs, patchConsole, SEVERITY } from './console.js';
import { OtlpJsonExporter, type ExporterStats } from './exporter.js';
import type { LogData, SpanData } from './otlp.js';
import { browserGlobal, detectResource, nodeProcess, pageUrl } from './runtime.js';
import { exceptionAttributes } from './span.js';
import { nowMillis } from './time.js';
import { AutohealTracer } from './tracer.js';

// Errors are sent almost at once (a crash or page unload may follow); 50 ms coalesces bursts.
const URGENT_DELAY_MILLIS = 50;

export interface CaptureOptions {
  /** Parent context for the error span (default: the active context). */
  context?: Context;
  /** Extra attributes for the span and the exception log record. */
  attributes?: Attributes;
  /** Span name (default `exception`). */
  spanName?: string;
  /** Log severity (default ERROR). */
  severityNumber?: number;
}

export class AutohealSdk {
  readonly config: ResolvedConfig;
  readonly tracer: AutohealTracer;
  readonly resource: Attributes;
  readonly isNode: boolean;
  private readonly exporter: OtlpJsonExporter;
  private enabled: boolean;
  private consoleBuffer: LogData[] = [];
  private undo: Array<() => void> = [];
  private urgentTimer: ReturnType<typeof setTimeout> | undefined;
  // Token bucket against error storms (a render loop throwing every frame, a retry loop).
  private exceptionTokens: number;
  private tokensAt = nowMillis();
  private exceptionsDropped = 0;

  constructor(options: AutohealOptions = {}) {
    this.isNode = nodeProcess() !== undefined;
    this.config = resolveConfig(options, this.isNode);
    this.enabled = this.config.enabled;
    this.exceptionTokens = this.config.maxExceptionsPerMinute;
    this.resource = {
      ...detectResource(),
      ...this.config.resourceAttributes,
      'service.name': this.config.serviceName,
    };
    if (this.config.serviceVersion) this.resource['service.version'] = this.config.serviceVersion;
    this.exporter = new OtlpJsonExporter(
      {
        endpoint: this.config.endpoint,
        headers: this.config.headers,
        maxQueueSize: this.config.maxQueueSize,
        maxExportBatchSize: 512,
        scheduledDelayMillis: this.config.scheduledDelayMillis,
        exportTimeoutMillis: this.config.exportTimeoutMillis,
        keepalive: browserGlobal() !== undefined,
      },
      this.resource,
    );
    this.tracer = new AutohealTracer(
      () => this.config.sampleRatio,
      () => this.enabled,
      (data: SpanData) => this.exportSpan(data),
    );
  }

  /** Installs console capture and global handlers; called once by init(). */
  start(): void {
    if (this.config.consoleLevel !== 'off') {
      this.undo.push(patchConsole(this.config.consoleLevel, (m, sev, text, args) => this.recordConsole(m, sev, text, args)));
    }
    this.undo.push(installGlobalHandlers(this, this.config.captureGlobalErrors));
  }

  isEnabled(): boolean {
    return this.enabled;
  }

  setEnabled(enabled: boolean): void {
    this.enabled = !!enabled;
    if (!this.enabled) {
      this.exporter.clear();
      this.consoleBuffer = [];
    }
  }

  stats(): ExporterStats & { consoleBuffered: number; exceptionsDropped: number } {
    return { ...this.exporter.stats, consoleBuffered: this.consoleBuffer.length, exceptionsDropped: this.exceptionsDropped };
  }

  /** Takes one token from the per-minute exception budget; false when the storm limit is hit. */
  private allowException(): boolean {
    const limit = this.config.maxExceptionsPerMinute;
    const now = nowMillis();
    this.exceptionTokens = Math.min(limit, this.exceptionTokens + ((now - this.tokensAt) * limit) / 60000);
    this.tokensAt = now;
    if (this.exceptionTokens < 1) {
      this.exceptionsDropped++;
      return false;
    }
    this.exceptionTokens--;
    return true;
  }

  exportSpan(data: SpanData): void {
    if (this.enabled) this.exporter.addSpan(data);
  }

  emitLog(record: LogData): void {
    if (this.enabled) this.exporter.addLog(record);
  }

  private recordConsole(method: string, severityNumber: number, severityText: string, args: unknown[]): void {
    if (!this.enabled) return;
    const now = nowMillis();
    const record: LogData = {
      timeMs: now,
      observedMs: now,
      severityNumber,
      severityText,
      body: formatConsoleArgs(args),
      attributes: { 'log.origin': `console.${method}` },
    };
    const sc = trace.getSpanContext(apiContext.active());
    if (sc && isSpanContextValid(sc)) {
      record.traceId = sc.traceId;
      record.spanId = sc.spanId;
      record.flags = sc.traceFlags;
      this.emitLog(record);
      return;
    }
    // Outside any span there is no trace to join yet: keep the newest lines and attach them to
    // the next error's trace, which is what the "preceding logs" are built from.
    if (this.config.consoleBufferSize <= 0) return;
    if (this.consoleBuffer.length >= this.config.consoleBufferSize) this.consoleBuffer.shift();
    this.consoleBuffer.push(record);
  }

  /** Sends buffered console records as part of the trace of `span`. */
  attachBufferedLogs(span: Span): void {
    const sc = span.spanContext();
    const buffered = this.consoleBuffer;
    if (!buffered.length || !isSpanContextValid(sc)) return;
    this.consoleBuffer = [];
    for (const r of buffered) {
      r.traceId = sc.traceId;
      r.spanId = sc.spanId;
      r.flags = sc.traceFlags;
      this.emitLog(r);
    }
  }

  /** Exception log record correlated with `span`, as semconv's exceptions-logs page describes. */
  emitExceptionLog(span: Span, exc: Attributes, extra: Attributes | undefined, severityNumber: number = SEVERITY.ERROR): void {
    const sc = span.spanContext();
    const now = nowMillis();
    const record: LogData = {
      timeMs: now,
      observedMs: now,
      severityNumber,
      severityText: severityNumber >= SEVERITY.FATAL ? 'FATAL' : severityNumber >= SEVERITY.ERROR ? 'ERROR' : 'WARN',
      body: typeof exc['exception.message'] === 'string' ? (exc['exception.message'] as string) : undefined,
      eventName: 'exception',
      attributes: { ...(extra ?? {}), ...exc },
    };
    if (isSpanContextValid(sc)) {
      record.traceId = sc.traceId;
      record.spanId = sc.spanId;
      record.flags = sc.traceFlags & TraceFlags.SAMPLED;
    }
    this.emitLog(record);
  }

  /** Marks `span` failed, records the exception on it and as a log, attaches the console buffer. */
  failSpan(span: Span, exc: Attributes, statusMessage: string | undefined, extra?: Attributes, severityNumber?: number): void {
    try {
      span.setStatus({ code: SpanStatusCode.ERROR, message: statusMessage });
      // Over budget the span keeps its error status but the heavy parts (stack, log) are skipped.
      if (!this.allowException()) return;
      const debugIds = debugIdsFor(exc['exception.stacktrace']);
      if (debugIds.length) {
        span.setAttribute(DEBUG_IDS_ATTRIBUTE, debugIds);
        extra = { ...(extra ?? {}), [DEBUG_IDS_ATTRIBUTE]: debugIds };
      }
      span.addEvent('exception', exc);
      this.attachBufferedLogs(span);
      this.emitExceptionLog(span, exc, extra, severityNumber);
      this.flushSoon();
    } catch {
      // Telemetry failure is not the app's failure.
    }
  }

  /** Records `err` as a short error span plus a correlated exception log; returns the trace id. */
  captureException(err: unknown, options: CaptureOptions = {}): string | undefined {
    try {
      if (!this.enabled) return undefined;
      const attributes: Attributes = { ...(options.attributes ?? {}) };
      const url = pageUrl();
      if (url) attributes['url.full'] = url;
      const span = this.tracer.startSpan(
        options.spanName ?? 'exception',
        { kind: SpanKind.INTERNAL, attributes },
        options.context ?? apiContext.active(),
      );
      const exc = exceptionAttributes(err) as unknown as Attributes;
      this.failSpan(span, exc, `${exc['exception.type']}: ${exc['exception.message']}`, attributes, options.severityNumber);
      span.end();
      return span.spanContext().traceId;
    } catch {
      return undefined;
    }
  }

  flushSoon(): void {
    if (this.urgentTimer !== undefined) return;
    this.urgentTimer = setTimeout(() => {
      this.urgentTimer = undefined;
      void this.exporter.flush();
    }, URGENT_DELAY_MILLIS);
    const t = this.urgentTimer as unknown as { unref?: () => void };
    if (typeof t.unref === 'function') t.unref();
  }

  hasPending(): boolean {
    return this.exporter.hasPending();
  }

  /**
   * Exports everything queued; resolves (never rejects) when done or after `timeoutMillis`.
   * With `abandon`, requests still running at the deadline are aborted so they cannot hold a
   * finishing Node process open.
   */
  flush(timeoutMillis?: number, abandon = false): Promise<void> {
    if (this.urgentTimer !== undefined) clearTimeout(this.urgentTimer);
    this.urgentTimer = undefined;
    const done = this.exporter.flush();
    if (timeoutMillis === undefined) return done;
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        if (abandon) this.exporter.abortInFlight();
        resolve();
      }, timeoutMillis);
      done.then(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Removes every hook this SDK installed and flushes. */
  shutdown(timeoutMillis = this.config.exportTimeoutMillis): Promise<void> {
    for (const u of this.undo.splice(0)) {
      try {
        u();
      } catch {
        // Keep undoing the rest.
      }
    }
    if (this.urgentTimer !== undefined) clearTimeout(this.urgentTimer);
    this.urgentTimer = undefined;
    return this.flush(timeoutMillis, true);
  }
}
