// Global error capture. Listeners are added next to existing ones (never replacing them) and
// never throw. In Node, adding an 'uncaughtException'/'unhandledRejection' listener would turn
// a crash into silent survival, so when ours is the only listener we flush (bounded) and then
// hand the error back to Node's default handling, which prints it and exits non-zero.
import { ROOT_CONTEXT } from '@opentelemetry/api';

import { SEVERITY } from './console.js';
import { browserGlobal, nodeProcess, type BrowserGlobal, type NodeProcess } from './runtime.js';
import type { AutohealSdk } from './sdk.js';

export function installGlobalHandlers(sdk: AutohealSdk, captureErrors: boolean): () => void {
  const proc = nodeProcess();
  if (proc) return installNode(sdk, proc, captureErrors);
  const g = browserGlobal();
  if (g) return installBrowser(sdk, g, captureErrors);
  return () => undefined;
}

function installNode(sdk: AutohealSdk, proc: NodeProcess, captureErrors: boolean): () => void {
  let crashing = false;
  // The value we re-raised into Node's default rejection handling; it must not be recorded twice.
  let reRaised: { reason: unknown } | undefined;

  const othersFor = (event: string, self: unknown): number => proc.listeners(event).filter((l) => l !== self).length;

  const onBeforeExit = (): void => {
    // beforeExit fires again after the flush's I/O completes; it stops once nothing is queued.
    if (sdk.hasPending()) void sdk.flush(sdk.config.exitTimeoutMillis, true);
  };

  const onException = (err: unknown, origin?: string): void => {
    const fatal = othersFor('uncaughtException', onException) === 0;
    const alreadyRecorded = reRaised !== undefined && origin === 'unhandledRejection';
    if (!alreadyRecorded) {
      sdk.captureException(err, {
        context: ROOT_CONTEXT,
        spanName: 'uncaught_exception',
        attributes: { 'autoheal.capture': 'process.uncaughtException' },
        severityNumber: fatal ? SEVERITY.FATAL : SEVERITY.ERROR,
      });
    }
    if (alreadyRecorded) {
      reRaised = undefined;
      // An app listener survived the re-raised rejection, so keep capturing later ones.
      if (!fatal) proc.on('unhandledRejection', onRejection);
    }
    if (fatal) {
      crash(() => dieLikeNode(proc, err));
    }
  };

  const onRejection = (reason: unknown): void => {
    if (reRaised !== undefined && reRaised.reason === reason) return;
    const fatal = othersFor('unhandledRejection', onRejection) === 0;
    // Node turns it into an uncaught exception; only without app listeners there does it kill.
    const kills = fatal && othersFor('uncaughtException', onException) === 0;
    sdk.captureException(reason, {
      context: ROOT_CONTEXT,
      spanName: 'unhandled_rejection',
      attributes: { 'autoheal.capture': 'process.unhandledRejection' },
      severityNumber: kills ? SEVERITY.FATAL : SEVERITY.ERROR,
    });
    if (fatal) {
      // Re-rejecting with our listener gone lets Node apply its own --unhandled-rejections mode
      // (default: throw, i.e. print and exit 1; an app's uncaughtException listener still sees it).
      crash(() => {
        reRaised = { reason };
        proc.removeListener('unhandledRejection', onRejection);
        void Promise.reject(reason);
      }, false);
    }
  };

  const crash = (reRaise: () => void, removeExceptionListener = true): void => {
    // A second uncaught error while the first one's export is flushing: it is recorded above,
    // and the process dies with the first one, as Node would have.
    if (crashing && removeExceptionListener) return;
    crashing = removeExceptionListener;
    void sdk.flush(sdk.config.exitTimeoutMillis, true).then(() => {
      if (removeExceptionListener) {
        proc.removeListener('uncaughtException', onException);
        proc.removeListener('unhandledRejection', onRejection);
      }
      reRaise();
    });
  };

  proc.on('beforeExit', onBeforeExit);
  if (captureErrors) {
    proc.on('uncaughtException', onException);
    proc.on('unhandledRejection', onRejection);
  }
  return () => {
    proc.removeListener('beforeExit', onBeforeExit);
    proc.removeListener('uncaughtException', onException);
    proc.removeListener('unhandledRejection', onRejection);
  };
}

/**
 * What Node prints for a fatal uncaught exception (minus the source-line arrow, which would point
 * at this file if we re-threw), then the same exit code 1.
 */
function dieLikeNode(proc: NodeProcess, err: unknown): void {
  let text: string;
  try {
    const util = proc.getBuiltinModule?.('node:util') as { inspect?: (v: unknown) => string } | undefined;
    text = util?.inspect ? util.inspect(err) : err instanceof Error && err.stack ? err.stack : String(err);
  } catch {
    text = String(err);
  }
  try {
    proc.stderr?.write(`${text}\n\nNode.js ${proc.version}\n`);
  } finally {
    proc.exit(1);
  }
}

interface ErrorEventLike {
  error?: unknown;
  message?: string;
  filename?: string;
  lineno?: number;
  colno?: number;
}

function installBrowser(sdk: AutohealSdk, g: BrowserGlobal, captureErrors: boolean): () => void {
  const onError = (ev: ErrorEventLike): void => {
    try {
      let err: unknown = ev.error;
      if (err === undefined || err === null) {
        // Cross-origin scripts without CORS only give "Script error." and a location.
        err = {
          name: 'Error',
          message: ev.message || 'Script error.',
          stack: ev.filename ? `Error: ${ev.message || 'Script error.'}\n    at ${ev.filename}:${ev.lineno ?? 0}:${ev.colno ?? 0}` : undefined,
        };
      }
      sdk.captureException(err, {
        context: ROOT_CONTEXT,
        spanName: 'uncaught_exception',
        attributes: { 'autoheal.capture': 'window.error' },
      });
    } catch {
      // Never disturb the page's own error handling.
    }
  };
  const onRejection = (ev: { reason?: unknown }): void => {
    try {
      sdk.captureException(ev.reason, {
        context: ROOT_CONTEXT,
        spanName: 'unhandled_rejection',
        attributes: { 'autoheal.capture': 'window.unhandledrejection' },
      });
    } catch {
      // As above.
    }
  };
  const onPageHide = (): void => {
    void sdk.flush();
  };
  const onVisibility = (): void => {
    if (g.document?.visibilityState === 'hidden') void sdk.flush();
  };

  if (captureErrors) {
    g.addEventListener('error', onError as (ev: never) => void);
    g.addEventListener('unhandledrejection', onRejection as (ev: never) => void);
  }
  g.addEventListener('pagehide', onPageHide);
  const doc = g.document;
  if (doc && typeof doc.addEventListener === 'function') doc.addEventListener('visibilitychange', onVisibility);
  return () => {
    g.removeEventListener('error', onError as (ev: never) => void);
    g.removeEventListener('unhandledrejection', onRejection as (ev: never) => void);
    g.removeEventListener('pagehide', onPageHide);
    if (doc && typeof doc.removeEventListener === 'function') doc.removeEventListener('visibilitychange', onVisibility);
  };
}
