import type { TimeInput } from '@opentelemetry/api';

// performance.now() is monotonic; anchoring it on timeOrigin gives sub-millisecond epoch
// timestamps without calling Date.now() for every record.
const perf: { timeOrigin?: number; now(): number } | undefined =
  typeof performance !== 'undefined' ? (performance as unknown as { timeOrigin?: number; now(): number }) : undefined;
const origin = perf && typeof perf.timeOrigin === 'number' ? perf.timeOrigin : Date.now();

/** Milliseconds since the epoch, fractional. */
export function nowMillis(): number {
  return perf ? origin + perf.now() : Date.now();
}

/** Converts any OTel API time input to fractional epoch milliseconds. */
export function toMillis(input: TimeInput | undefined): number {
  if (input === undefined) return nowMillis();
  if (typeof input === 'number') {
    // The API allows performance.now()-style relative numbers; those are far below any epoch value.
    return input < 1e12 ? origin + input : input;
  }
  if (input instanceof Date) return input.getTime();
  if (Array.isArray(input)) return input[0] * 1e3 + input[1] / 1e6;
  return nowMillis();
}

/** Fractional epoch milliseconds as the decimal nanosecond string OTLP/JSON uses for uint64. */
export function millisToNanoString(ms: number): string {
  const whole = Math.floor(ms);
  let frac = Math.round((ms - whole) * 1e6);
  if (frac > 999999) frac = 999999;
  return String(whole) + String(frac).padStart(6, '0');
}
