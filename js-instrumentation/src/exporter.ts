// Bounded, batching OTLP/HTTP JSON exporter. Every public method swallows its own failures:
// telemetry must never throw into, block, or keep alive the host application.
import type { Attributes } from '@opentelemetry/api';

import { encodeLogs, encodeTraces, type LogData, type SpanData } from './otlp.js';

export interface ExporterOptions {
  endpoint: string;
  headers: Record<string, string>;
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduledDelayMillis: number;
  exportTimeoutMillis: number;
  /** Browsers: send with fetch keepalive so requests survive page unload. */
  keepalive: boolean;
}

export interface ExporterStats {
  spansExported: number;
  logsExported: number;
  dropped: number;
  failedRequests: number;
}

// Browsers cap the sum of in-flight keepalive bodies at 64 KiB; larger bodies go without it.
const KEEPALIVE_BODY_LIMIT = 60000;
const MAX_IN_FLIGHT = 8;

type FetchFn = (url: string, init: Record<string, unknown>) => Promise<{ ok: boolean; status: number; text?(): Promise<string>; body?: unknown }>;

export class OtlpJsonExporter {
  readonly stats: ExporterStats = { spansExported: 0, logsExported: 0, dropped: 0, failedRequests: 0 };
  private spans: SpanData[] = [];
  private logs: LogData[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight = new Set<Promise<void>>();
  private controllers = new Set<AbortController>();
  private readonly tracesUrl: string;
  private readonly logsUrl: string;

  constructor(
    private readonly opts: ExporterOptions,
    private readonly resource: Attributes,
  ) {
    const base = opts.endpoint.replace(/\/+$/, '');
    this.tracesUrl = base + '/v1/traces';
    this.logsUrl = base + '/v1/logs';
  }

  addSpan(span: SpanData): void {
    if (this.spans.length >= this.opts.maxQueueSize) {
      this.stats.dropped++;
      return;
    }
    this.spans.push(span);
    this.schedule(this.spans.length >= this.opts.maxExportBatchSize);
  }

  addLog(log: LogData): void {
    if (this.logs.length >= this.opts.maxQueueSize) {
      this.stats.dropped++;
      return;
    }
    this.logs.push(log);
    this.schedule(this.logs.length >= this.opts.maxExportBatchSize);
  }

  /** Sends everything queued and resolves when it all settled (never rejects). */
  async flush(): Promise<void> {
    try {
      this.clearTimer();
      // Bounded: each pass either starts a request or waits for one to finish.
      for (let pass = 0; pass < 1000; pass++) {
        this.drain();
        if (this.inFlight.size === 0) return;
        await Promise.all([...this.inFlight]);
        if (!this.hasPending()) return;
      }
    } catch {
      // Nothing to report to the app.
    }
  }

  /** Starts requests for queued data while request slots are free; logs (exceptions) first. */
  private drain(): void {
    while (this.logs.length && this.inFlight.size < MAX_IN_FLIGHT) {
      const batch = this.logs.splice(0, this.opts.maxExportBatchSize);
      this.send(this.logsUrl, encodeLogs(this.resource, batch), batch.length, () => (this.stats.logsExported += batch.length));
    }
    while (this.spans.length && this.inFlight.size < MAX_IN_FLIGHT) {
      const batch = this.spans.splice(0, this.opts.maxExportBatchSize);
      this.send(this.tracesUrl, encodeTraces(this.resource, batch), batch.length, () => (this.stats.spansExported += batch.length));
    }
  }

  /** Gives up on requests still running (after a bounded flush at exit or shutdown). */
  abortInFlight(): void {
    for (const c of this.controllers) {
      try {
        c.abort();
      } catch {
        // Ignore: the request is being abandoned anyway.
      }
    }
  }

  hasPending(): boolean {
    return this.spans.length > 0 || this.logs.length > 0;
  }

  /** Drops what is queued (used when the SDK is disabled). */
  clear(): void {
    this.stats.dropped += this.spans.length + this.logs.length;
    this.spans = [];
    this.logs = [];
    this.clearTimer();
  }

  private schedule(now: boolean): void {
    if (now) {
      // A full batch goes out at once if a request slot is free; otherwise it waits in the
      // (bounded) queue for a slot, see send().
      this.drain();
      return;
    }
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.opts.scheduledDelayMillis);
    // Node: a pending export must not keep a finished program running.
    const t = this.timer as unknown as { unref?: () => void };
    if (typeof t.unref === 'function') t.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private send(url: string, body: string, count: number, onOk: () => void): void {
    const fetchFn = (globalThis as { fetch?: FetchFn }).fetch;
    if (typeof fetchFn !== 'function') {
      this.stats.dropped += count;
      return;
    }
    const controller = typeof AbortController === 'function' ? new AbortController() : undefined;
    if (controller) this.controllers.add(controller);
    const timeout = setTimeout(() => controller?.abort(), this.opts.exportTimeoutMillis);
    const t = timeout as unknown as { unref?: () => void };
    if (typeof t.unref === 'function') t.unref();
    const init: Record<string, unknown> = {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...this.opts.headers },
      body,
      signal: controller?.signal,
    };
    if (this.opts.keepalive && body.length < KEEPALIVE_BODY_LIMIT) init.keepalive = true;
    let p: Promise<void>;
    try {
      p = fetchFn(url, init).then(
        (res) => {
          if (res.ok) onOk();
          else this.stats.failedRequests++;
          // Drain the body so Node's fetch can reuse the connection.
          if (typeof res.text === 'function') return res.text().then(() => undefined, () => undefined);
          return undefined;
        },
        () => {
          this.stats.failedRequests++;
        },
      );
    } catch {
      this.stats.failedRequests++;
      clearTimeout(timeout);
      if (controller) this.controllers.delete(controller);
      return;
    }
    const tracked: Promise<void> = p.then(() => {
      clearTimeout(timeout);
      if (controller) this.controllers.delete(controller);
      this.inFlight.delete(tracked);
      if (this.spans.length >= this.opts.maxExportBatchSize || this.logs.length >= this.opts.maxExportBatchSize) this.drain();
      else if (this.hasPending()) this.schedule(false);
    });
    this.inFlight.add(tracked);
  }
}
