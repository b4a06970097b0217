import type { Attributes } from '@opentelemetry/api';

/** Environment variables read in Node (browsers have none); an explicit option always wins. */
export const ENV_ENDPOINT = 'OTEL_EXPORTER_OTLP_ENDPOINT';
export const ENV_HEADERS = 'OTEL_EXPORTER_OTLP_HEADERS';
export const ENV_TIMEOUT = 'OTEL_EXPORTER_OTLP_TIMEOUT';
export const ENV_SERVICE_NAME = 'OTEL_SERVICE_NAME';
export const ENV_RESOURCE_ATTRIBUTES = 'OTEL_RESOURCE_ATTRIBUTES';
export const ENV_SAMPLER = 'OTEL_TRACES_SAMPLER';
export const ENV_SAMPLER_ARG = 'OTEL_TRACES_SAMPLER_ARG';
export const ENV_SDK_DISABLED = 'OTEL_SDK_DISABLED';
export const ENV_INGEST_TOKEN = 'AUTOHEAL_INGEST_TOKEN';

export const DEFAULT_ENDPOINT = 'http://localhost:4318';

export type ConsoleLevel = 'debug' | 'info' | 'warn' | 'error' | 'off';

export interface AutohealOptions {
  /** OTLP/HTTP base URL; `/v1/traces` and `/v1/logs` are appended. Env OTEL_EXPORTER_OTLP_ENDPOINT, default http://localhost:4318. */
  endpoint?: string;
  /** Extra request headers. Env OTEL_EXPORTER_OTLP_HEADERS (`k=v,k2=v2`). */
  headers?: Record<string, string>;
  /** Sent as `Authorization: Bearer <token>`. Env AUTOHEAL_INGEST_TOKEN (Node only). */
  ingestToken?: string;
  /** Env OTEL_SERVICE_NAME, default `unknown_service` (`unknown_service:node` in Node). */
  serviceName?: string;
  serviceVersion?: string;
  /** Merged over env OTEL_RESOURCE_ATTRIBUTES; `service.name` from serviceName wins. */
  resourceAttributes?: Attributes;
  /** Fraction of new traces whose spans are exported (0..1). Exception and console logs are always exported. Env OTEL_TRACES_SAMPLER_ARG with a *traceidratio sampler, default 1. */
  sampleRatio?: number;
  /** Start enabled (default true; env OTEL_SDK_DISABLED=true turns it off). Toggle later with setEnabled(). */
  enabled?: boolean;
  /** Capture uncaught errors and unhandled rejections (default true). */
  captureGlobalErrors?: boolean;
  /** Lowest console method level turned into log records (default 'info': log/info/warn/error). */
  consoleLevel?: ConsoleLevel;
  /** Console records kept while no span is active, attached to the next error's trace (default 100). */
  consoleBufferSize?: number;
  /** Record MCP tool arguments as `gen_ai.tool.call.arguments` (opt-in per semconv; default false). */
  captureToolArguments?: boolean;
  /**
   * Capture the app's call site of each MCP request, appended to the stack of a failed call
   * (default true). Costs one Error.captureStackTrace per request, a few µs.
   */
  captureCallSite?: boolean;
  /** Exceptions recorded per minute at most; the rest are counted and dropped (default 100). */
  maxExceptionsPerMinute?: number;
  /** Node: how long a crash waits for the export before the process dies (default 2000 ms). */
  exitTimeoutMillis?: number;
  /** Per-request export timeout. Env OTEL_EXPORTER_OTLP_TIMEOUT, default 10000 ms. */
  exportTimeoutMillis?: number;
  /** Per-signal queue bound; data beyond it is dropped and counted (default 2048). */
  maxQueueSize?: number;
  /** Batch delay for ordinary data (default 1000 ms); errors are sent after 50 ms. */
  scheduledDelayMillis?: number;
}

export interface ResolvedConfig {
  endpoint: string;
  headers: Record<string, string>;
  serviceName: string;
  serviceVersion?: string;
  resourceAttributes: Attributes;
  sampleRatio: number;
  enabled: boolean;
  captureGlobalErrors: boolean;
  consoleLevel: ConsoleLevel;
  consoleBufferSize: number;
  captureToolArguments: boolean;
  captureCallSite: boolean;
  maxExceptionsPerMinute: number;
  exitTimeoutMillis: number;
  exportTimeoutMillis: number;
  maxQueueSize: number;
  scheduledDelayMillis: number;
}

export function readEnv(name: string): string | undefined {
  try {
    const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
    const v = proc && proc.env ? proc.env[name] : undefined;
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  } catch {
    return undefined;
  }
}

/** Parses the `k=v,k2=v2` (percent-encoded) lists of OTEL_EXPORTER_OTLP_HEADERS / OTEL_RESOURCE_ATTRIBUTES. */
export function parseKeyValueList(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const part of raw.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    try {
      out[decodeURIComponent(part.slice(0, i).trim())] = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      // A malformed entry is skipped, as the spec asks; the rest still applies.
    }
  }
  return out;
}

function envRatio(): number | undefined {
  const sampler = readEnv(ENV_SAMPLER);
  if (sampler === 'always_off' || sampler === 'parentbased_always_off') return 0;
  if (sampler !== 'traceidratio' && sampler !== 'parentbased_traceidratio') return undefined;
  const arg = Number(readEnv(ENV_SAMPLER_ARG));
  return Number.isFinite(arg) ? arg : undefined;
}

function finiteOr(v: number | undefined, fallback: number, min = 0): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= min ? v : fallback;
}

export function resolveConfig(options: AutohealOptions, isNode: boolean): ResolvedConfig {
  const headers = { ...parseKeyValueList(readEnv(ENV_HEADERS)), ...(options.headers ?? {}) };
  const token = options.ingestToken ?? readEnv(ENV_INGEST_TOKEN);
  if (token && !Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
    headers['Authorization'] = `Bearer ${token}`;
  }
  const ratio = options.sampleRatio ?? envRatio() ?? 1;
  const envTimeout = Number(readEnv(ENV_TIMEOUT));
  const level = options.consoleLevel ?? 'info';
  return {
    endpoint: options.endpoint ?? readEnv(ENV_ENDPOINT) ?? DEFAULT_ENDPOINT,
    headers,
    serviceName: options.serviceName ?? readEnv(ENV_SERVICE_NAME) ?? (isNode ? 'unknown_service:node' : 'unknown_service'),
    serviceVersion: options.serviceVersion,
    resourceAttributes: { ...parseKeyValueList(readEnv(ENV_RESOURCE_ATTRIBUTES)), ...(options.resourceAttributes ?? {}) },
    sampleRatio: Math.min(1, Math.max(0, Number.isFinite(ratio) ? ratio : 1)),
    enabled: options.enabled ?? readEnv(ENV_SDK_DISABLED)?.toLowerCase() !== 'true',
    captureGlobalErrors: options.captureGlobalErrors ?? true,
    consoleLevel: ['debug', 'info', 'warn', 'error', 'off'].includes(level) ? level : 'info',
    consoleBufferSize: Math.floor(finiteOr(options.consoleBufferSize, 100)),
    captureToolArguments: options.captureToolArguments ?? false,
    captureCallSite: options.captureCallSite ?? true,
    maxExceptionsPerMinute: Math.floor(finiteOr(options.maxExceptionsPerMinute, 100)),
    exitTimeoutMillis: finiteOr(options.exitTimeoutMillis, 2000),
    exportTimeoutMillis: finiteOr(options.exportTimeoutMillis, envTimeout > 0 ? envTimeout : 10000, 1),
    maxQueueSize: Math.floor(finiteOr(options.maxQueueSize, 2048, 1)),
    scheduledDelayMillis: finiteOr(options.scheduledDelayMillis, 1000),
  };
}
