import type { Attributes } from '@opentelemetry/api';

import { SCOPE_NAME, VERSION } from './version.js';

export interface NodeProcess {
  version: string;
  versions?: { node?: string };
  pid?: number;
  env?: Record<string, string | undefined>;
  on(event: string, fn: (...args: never[]) => void): unknown;
  removeListener(event: string, fn: (...args: never[]) => void): unknown;
  listeners(event: string): unknown[];
  exit(code?: number): never;
  stderr?: { write(s: string): unknown };
  getBuiltinModule?(id: string): unknown;
}

export interface BrowserGlobal {
  addEventListener(type: string, fn: (ev: never) => void, options?: unknown): void;
  removeEventListener(type: string, fn: (ev: never) => void, options?: unknown): void;
  location?: { href?: string };
  navigator?: { userAgent?: string };
  document?: { visibilityState?: string; addEventListener?: BrowserGlobal['addEventListener']; removeEventListener?: BrowserGlobal['removeEventListener'] };
}

export function nodeProcess(): NodeProcess | undefined {
  const p = (globalThis as { process?: NodeProcess }).process;
  return p && p.versions && typeof p.versions.node === 'string' && typeof p.on === 'function' ? p : undefined;
}

/** Window or worker global scope; undefined in Node (even with DOM shims lacking event targets). */
export function browserGlobal(): BrowserGlobal | undefined {
  if (nodeProcess()) return undefined;
  const g = globalThis as unknown as BrowserGlobal;
  return typeof g.addEventListener === 'function' ? g : undefined;
}

export function pageUrl(): string | undefined {
  try {
    const href = browserGlobal()?.location?.href;
    return typeof href === 'string' ? href : undefined;
  } catch {
    return undefined;
  }
}

export function detectResource(): Attributes {
  const attrs: Attributes = {
    'telemetry.sdk.name': SCOPE_NAME,
    'telemetry.sdk.version': VERSION,
  };
  const proc = nodeProcess();
  if (proc) {
    attrs['telemetry.sdk.language'] = 'nodejs';
    attrs['autoheal.source'] = 'node';
    attrs['process.runtime.name'] = 'nodejs';
    attrs['process.runtime.version'] = proc.versions?.node;
    if (typeof proc.pid === 'number') attrs['process.pid'] = proc.pid;
    return attrs;
  }
  attrs['telemetry.sdk.language'] = 'webjs';
  attrs['autoheal.source'] = 'browser';
  const g = browserGlobal();
  const ua = g?.navigator?.userAgent;
  if (typeof ua === 'string') attrs['browser.user_agent'] = ua;
  const url = pageUrl();
  if (url) attrs['url.full'] = url;
  return attrs;
}
