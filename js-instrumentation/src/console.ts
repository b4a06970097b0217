import type { ConsoleLevel } from './config.js';
import { safeString } from './span.js';

// OTel severity numbers (logs data model).
export const SEVERITY = { DEBUG: 5, INFO: 9, WARN: 13, ERROR: 17, FATAL: 21 } as const;

const METHODS: Array<[method: 'debug' | 'log' | 'info' | 'warn' | 'error', severity: number, text: string]> = [
  ['debug', SEVERITY.DEBUG, 'DEBUG'],
  ['log', SEVERITY.INFO, 'INFO'],
  ['info', SEVERITY.INFO, 'INFO'],
  ['warn', SEVERITY.WARN, 'WARN'],
  ['error', SEVERITY.ERROR, 'ERROR'],
];

const LEVEL_MIN: Record<ConsoleLevel, number> = { debug: 5, info: 9, warn: 13, error: 17, off: Infinity };

const MAX_ARG_LENGTH = 2000;
const MAX_BODY_LENGTH = 8192;

function formatArg(a: unknown): string {
  if (typeof a === 'string') return a;
  if (a instanceof Error) return a.stack || `${a.name}: ${a.message}`;
  const s = safeString(a);
  return s.length > MAX_ARG_LENGTH ? s.slice(0, MAX_ARG_LENGTH) + '…' : s;
}

const FORMAT_RE = /%[sdifoOjc%]/g;

/** Joins console arguments as the console shows them, including `%s`-style substitutions. */
export function formatConsoleArgs(args: unknown[]): string {
  let out = '';
  let start = 0;
  if (typeof args[0] === 'string' && args[0].includes('%')) {
    let next = 1;
    out = args[0].replace(FORMAT_RE, (spec) => {
      if (spec === '%%') return '%';
      if (next >= args.length) return spec;
      const v = args[next++];
      switch (spec) {
        case '%c':
          return ''; // CSS in browsers: not text.
        case '%d':
        case '%i':
          return typeof v === 'bigint' ? `${v}n` : String(spec === '%i' ? parseInt(String(v), 10) : Number(v));
        case '%f':
          return String(parseFloat(String(v)));
        default:
          return formatArg(v);
      }
    });
    start = next;
  }
  for (let i = start; i < args.length && out.length < MAX_BODY_LENGTH; i++) {
    out += (out || i ? ' ' : '') + formatArg(args[i]);
  }
  return out.length > MAX_BODY_LENGTH ? out.slice(0, MAX_BODY_LENGTH) + '…' : out;
}

export type ConsoleSink = (method: string, severityNumber: number, severityText: string, args: unknown[]) => void;

/** Wraps console methods at or above `level`; returns the undo function. Original output is kept. */
export function patchConsole(level: ConsoleLevel, sink: ConsoleSink): () => void {
  const con = (globalThis as unknown as { console?: Record<string, unknown> }).console;
  if (!con || level === 'off') return () => undefined;
  const restores: Array<() => void> = [];
  let busy = false;
  for (const [method, severity, text] of METHODS) {
    const original = con[method];
    if (typeof original !== 'function' || severity < LEVEL_MIN[level]) continue;
    const wrapped = function (this: unknown, ...args: unknown[]): unknown {
      // `busy` stops recursion should anything below log to the console itself.
      if (!busy) {
        busy = true;
        try {
          sink(method, severity, text, args);
        } catch {
          // Never let capture break logging.
        } finally {
          busy = false;
        }
      }
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    };
    con[method] = wrapped;
    restores.push(() => {
      if (con[method] === wrapped) con[method] = original;
    });
  }
  return () => restores.forEach((r) => r());
}
