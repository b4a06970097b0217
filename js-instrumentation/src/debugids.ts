// Debug IDs of the loaded bundles an error's stack runs through, so that otel-autoheal finds the
// exact source map of each bundle even when URLs or releases do not match. Bundles register
// themselves in a global `{ [stack of an Error made inside the bundle]: debugId }`:
// `_autohealDebugIds` is written by the snippet `otel-autoheal sourcemaps inject` adds, and
// `_sentryDebugIds` by Sentry's bundler plugins (same shape). A stack cannot read the
// `//# debugId=` comment itself: that would mean fetching every script again.

/** The attribute the IDs are sent in: `"<debug id> <bundle URL>"` for each bundle in the stack. */
export const DEBUG_IDS_ATTRIBUTE = 'autoheal.js.debug_ids';
const GLOBALS = ['_autohealDebugIds', '_sentryDebugIds'];
/** A file URL or absolute path followed by `:line:column`, in V8, Firefox and Safari stacks. */
const FILE_IN_STACK = /(?:^|[\s(@])((?:[a-z][\w+.-]*:\/\/|\/)[^\s()@]*?):\d+:\d+/gm;
const MAX_IDS = 20;

let registered = -1;
let byFile: Record<string, string> = {};

function registry(): Array<Record<string, unknown>> {
  const g = globalThis as Record<string, unknown>;
  return GLOBALS.map((name) => g[name]).filter((v): v is Record<string, unknown> => !!v && typeof v === 'object');
}

/** The files in `stack`, in order of appearance. */
function files(stack: string): string[] {
  const out: string[] = [];
  FILE_IN_STACK.lastIndex = 0;
  for (let m = FILE_IN_STACK.exec(stack); m; m = FILE_IN_STACK.exec(stack)) out.push(m[1]);
  return out;
}

/** `"<debug id> <url>"` for each registered bundle that appears in `stack` (none without a registry). */
export function debugIdsFor(stack: unknown): string[] {
  if (typeof stack !== 'string') return [];
  const tables = registry();
  let count = 0;
  for (const t of tables) count += Object.keys(t).length;
  if (!count) return [];
  if (count !== registered) {
    // Bundles register when they load (lazily loaded chunks later): rebuild when that changed.
    byFile = {};
    for (const t of tables) {
      for (const key of Object.keys(t)) {
        const file = files(key)[0];
        if (file && typeof t[key] === 'string') byFile[file] = t[key] as string;
      }
    }
    registered = count;
  }
  const out: string[] = [];
  for (const file of new Set(files(stack))) {
    if (byFile[file] && out.length < MAX_IDS) out.push(`${byFile[file]} ${file}`);
  }
  return out;
}
