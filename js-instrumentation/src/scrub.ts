// Secret scrubbing of everything this SDK exports, with the project's one rule set
// (otel_autoheal/scrub_rules.toml, compiled into scrub-rules.ts by scripts/scrub-rules.mjs) and the
// same logic as the Python engine (otel_autoheal/_scrub_engine.py): a test runs the shared secret
// corpus through both and requires equal output. Values are replaced by "[redacted:<kind>]", keys
// are kept.
//
// Time bound: V8's regex engine backtracks, but every rule regex has only bounded repeats, none
// nested in another that can run more than once, and no lookaround or backreferences (the rule
// file's constraints, checked by the Python tests), so the work per start position is bounded by a
// constant and a text costs time linear in its length (test/scrub.test.mjs measures the growth).
// Texts beyond maxTextChars (256 KiB) are cut before scrubbing.
import { RULES } from './scrub-rules.js';

export interface RegexSpec {
  source: string;
  flags: string;
}

/** The shape of the generated rules (see scripts/scrub-rules.mjs). */
export interface ScrubRules {
  maxTextChars: number;
  names: {
    anywhere: string[];
    last_word: string[];
    suffix: string[];
    not_secret_last_word: string[];
    allowed: string[];
    stems: string[];
    kinds: string[][];
  };
  keyed: Array<{ form: string; key: RegexSpec }>;
  values: Record<string, RegexSpec>;
  blocks: Array<{ kind: string; begin: RegexSpec; end: RegexSpec; keywords: string[]; maxChars: number }>;
  rules: Array<{ kind: string; regex: RegexSpec; keywords: string[]; luhn: boolean; extend: RegexSpec | null }>;
}

type Rule = ScrubRules['rules'][number];
type Block = ScrubRules['blocks'][number];
type Span = [number, number];
/** A match of a regex compiled with the `d` flag (ES2022; the lib setting is ES2020). */
type Match = RegExpExecArray & { indices?: Array<[number, number] | undefined> };

const REDACTED = '[redacted:';
const MAX_NAME = 200;
const NAME_WORDS = /[a-z0-9]+/g;
const CAMEL = /([a-z0-9])([A-Z])/g;
const LINE_LEAD = /^[ \t]*(?:(?:export|set|-)[ \t]+)?["']?$/;
const UPPER_NAME = /^[A-Z][A-Z0-9_]*$/;
const PORT = /^[0-9]{1,5}(?:\/|$)/;
const ALPHA = /^\p{L}+$/u;
/** The value regex that continues a value of each keyed form past its repeat bound. */
const CONTINUE: Record<string, string> = { query: 'query', flag: 'token', xml: 'xml' };
/** Programs whose -p takes the password attached (mysql -pS3cret). */
const ATTACHED_PASSWORD_FLAG = new Set(['mysql', 'mysqldump', 'mysqladmin', 'mariadb', 'mariadb-dump', 'mysqlimport']);
/** Programs with a password option not named like one. */
const SEPARATE_PASSWORD_FLAG: Record<string, string> = { sshpass: '-p', 'redis-cli': '-a' };
const CURL_USER_FLAGS = new Set(['-u', '--user', '--proxy-user', '-U']);

interface Compiled {
  /** Global: finds the next match at or after lastIndex. */
  search: RegExp;
  /** Sticky: matches exactly at lastIndex. */
  at: RegExp;
}

function luhnValid(digits: string): boolean {
  let total = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    total += d;
  }
  return total % 10 === 0;
}

function words(name: string): string[] {
  return name.replace(CAMEL, '$1_$2').toLowerCase().match(NAME_WORDS) ?? [];
}

/** The rules compiled for V8 plus the logic that applies them. */
export class Scrubber {
  readonly maxTextChars: number;
  private readonly compiled = new Map<RegexSpec, Compiled>();
  private readonly rulesByKeyword = new Map<string, number[]>();
  private readonly always: number[] = [];
  private readonly keywords: string[];
  private readonly stems: string[];
  private readonly allowedNames: Set<string>;
  private readonly lastWord: Set<string>;
  private readonly notSecretLast: Set<string>;
  private readonly nameCache = new Map<string, boolean>();

  constructor(private readonly rules: ScrubRules = RULES) {
    this.maxTextChars = rules.maxTextChars;
    const names = rules.names;
    this.allowedNames = new Set(names.allowed.map((n) => n.toLowerCase()));
    this.lastWord = new Set(names.last_word);
    this.notSecretLast = new Set(names.not_secret_last_word);
    this.stems = names.stems;
    rules.rules.forEach((rule, index) => {
      if (!rule.keywords.length) this.always.push(index);
      for (const k of rule.keywords) {
        const list = this.rulesByKeyword.get(k) ?? [];
        list.push(index);
        this.rulesByKeyword.set(k, list);
      }
    });
    const all = new Set<string>(this.stems);
    for (const r of rules.rules) r.keywords.forEach((k) => all.add(k));
    for (const b of rules.blocks) b.keywords.forEach((k) => all.add(k));
    this.keywords = [...all];
  }

  // -- plumbing ---------------------------------------------------------------------------------
  /** Compiled on first use: most texts trigger few rules. */
  private re(spec: RegexSpec): Compiled {
    let c = this.compiled.get(spec);
    if (!c) {
      c = { search: new RegExp(spec.source, spec.flags + 'gd'), at: new RegExp(spec.source, spec.flags + 'yd') };
      this.compiled.set(spec, c);
    }
    return c;
  }

  private search(spec: RegexSpec, hay: string, pos: number): Match | null {
    const r = this.re(spec).search;
    r.lastIndex = pos;
    return r.exec(hay) as Match | null;
  }

  private matchAt(spec: RegexSpec, hay: string, pos: number): Match | null {
    const r = this.re(spec).at;
    r.lastIndex = pos;
    return r.exec(hay) as Match | null;
  }

  /** Extends a run past the regex's repeat bound by matching again where it stopped. */
  private extend(spec: RegexSpec, hay: string, end: number): number {
    for (;;) {
      const more = this.matchAt(spec, hay, end);
      if (!more || more[0].length === 0) return end;
      end += more[0].length;
    }
  }

  // -- names ------------------------------------------------------------------------------------
  /** Whether an option, key, header or variable name holds a secret. */
  isSecretName(name: string): boolean {
    let cached = this.nameCache.get(name);
    if (cached === undefined) {
      if (this.nameCache.size > 4096) this.nameCache.clear();
      cached = this.computeSecretName(name);
      this.nameCache.set(name, cached);
    }
    return cached;
  }

  private computeSecretName(full: string): boolean {
    const name = full.slice(-MAX_NAME);
    const lowered = name.toLowerCase();
    if (this.allowedNames.has(lowered) || this.allowedNames.has(lowered.replace(/^-+/, ''))) return false;
    const w = words(name);
    if (!w.length || this.notSecretLast.has(w[w.length - 1])) return false;
    const compact = w.join('');
    const names = this.rules.names;
    return (
      this.lastWord.has(w[w.length - 1]) ||
      names.anywhere.some((word) => compact.includes(word)) ||
      names.suffix.some((s) => compact.endsWith(s))
    );
  }

  /** The label kind for a secret name ("db.password" -> password, "X-Api-Key" -> api_key). */
  nameKind(name: string): string {
    const compact = words(name.slice(-MAX_NAME)).join('');
    for (const [word, kind] of this.rules.names.kinds) if (compact.includes(word)) return kind;
    return 'secret';
  }

  // -- text -------------------------------------------------------------------------------------
  /** Cuts a text longer than the size budget at whitespace, with a visible note. */
  cap(text: string): string {
    const limit = this.maxTextChars;
    if (text.length <= limit) return text;
    let head = text.slice(0, limit);
    const cut = Math.max(head.lastIndexOf('\n'), head.lastIndexOf(' '));
    if (cut > Math.floor(limit / 2)) head = head.slice(0, cut);
    return head + `\n[… ${text.length - head.length} characters not shown: over the scrubber's size budget]`;
  }

  /** The text with every recognised secret replaced by [redacted:<kind>]. */
  text(text: string): string {
    if (!text) return text;
    let hay = this.cap(text);
    const lowered = hay.toLowerCase();
    const present = new Set(this.keywords.filter((k) => lowered.includes(k)));
    for (const block of this.rules.blocks) {
      if (block.keywords.some((k) => present.has(k))) hay = this.applyBlock(block, hay);
    }
    const chosen = new Set(this.always);
    for (const k of present) for (const i of this.rulesByKeyword.get(k) ?? []) chosen.add(i);
    for (const index of [...chosen].sort((a, b) => a - b)) hay = this.applyRule(this.rules.rules[index], hay);
    if (this.stems.some((s) => present.has(s))) {
      for (const keyed of this.rules.keyed) hay = this.applyKeyed(keyed.form, keyed.key, hay);
    }
    return hay;
  }

  private applyBlock(block: Block, hay: string): string {
    const out: string[] = [];
    let done = 0;
    let pos = 0;
    for (let begin = this.search(block.begin, hay, pos); begin; begin = this.search(block.begin, hay, pos)) {
      const beginEnd = begin.index + begin[0].length;
      pos = beginEnd > begin.index ? beginEnd : beginEnd + 1;
      if (begin.index < done) continue;
      const limit = Math.min(hay.length, beginEnd + block.maxChars);
      // Searched in the bounded window only: an unterminated block costs max_chars, not the text.
      const window = hay.slice(beginEnd, limit);
      const end = this.search(block.end, window, 0);
      out.push(hay.slice(done, begin.index), `[redacted:${block.kind}]`);
      done = end ? beginEnd + end.index + end[0].length : limit;
    }
    if (!out.length) return hay;
    out.push(hay.slice(done));
    return out.join('');
  }

  private applyRule(rule: Rule, hay: string): string {
    const out: string[] = [];
    let done = 0;
    let pos = 0;
    while (pos <= hay.length) {
      const match = this.search(rule.regex, hay, pos);
      if (!match) break;
      const matchEnd = match.index + match[0].length;
      const end = rule.extend ? this.extend(rule.extend, hay, matchEnd) : matchEnd;
      for (const [start, stop] of this.secretSpans(match, rule, end, hay)) {
        out.push(hay.slice(done, start), `[redacted:${rule.kind}]`);
        done = stop;
      }
      // Resume after the last group, not after the match: the context a match consumed after its
      // secret may be the context the next match needs before its own.
      const groups = match.length - 1;
      let lastGroup = -1;
      for (let i = 1; i <= groups; i++) {
        const g = match.indices?.[i];
        if (g) lastGroup = Math.max(lastGroup, g[1]);
      }
      const resume = groups === 0 || lastGroup === matchEnd ? end : lastGroup;
      pos = Math.max(resume, done, match.index + 1);
    }
    if (!out.length) return hay;
    out.push(hay.slice(done));
    return out.join('');
  }

  /** The spans to replace: the capture groups that took part (else the whole match). */
  private secretSpans(match: Match, rule: Rule, end: number, hay: string): Span[] {
    const groups = match.length - 1;
    if (groups === 0) return [[match.index, end]];
    const spans: Span[] = [];
    const matchEnd = match.index + match[0].length;
    for (let i = 1; i <= groups; i++) {
      const g = match.indices?.[i];
      if (!g) continue;
      const secret = hay.slice(g[0], g[1]);
      if (
        secret.startsWith(REDACTED) ||
        (rule.kind === 'url_password' && PORT.test(secret)) ||
        (rule.luhn && !this.luhnCard(secret))
      ) {
        continue;
      }
      spans.push([g[0], g[1] === matchEnd ? end : g[1]]);
    }
    return spans;
  }

  private luhnCard(secret: string): boolean {
    const digits = secret.replace(/[^0-9]/g, '');
    return digits.length >= 13 && digits.length <= 19 && luhnValid(digits);
  }

  private applyKeyed(form: string, key: RegexSpec, hay: string): string {
    const out: string[] = [];
    let done = 0;
    let pos = 0;
    for (let match = this.search(key, hay, pos); match; match = this.search(key, hay, pos)) {
      const matchEnd = match.index + match[0].length;
      pos = matchEnd > match.index ? matchEnd : matchEnd + 1;
      const g = match.indices?.[1];
      if (!g || g[0] < done) continue; // inside a value already replaced
      const name = match[1];
      if (!this.isSecretName(name)) continue;
      const span = this.valueSpan(form, hay, match, name);
      if (!span) continue;
      out.push(hay.slice(done, span[0]), `[redacted:${this.nameKind(name)}]`);
      done = span[1];
    }
    if (!out.length) return hay;
    out.push(hay.slice(done));
    return out.join('');
  }

  /** Where the value after a secret name starts and ends, or null to keep it. */
  private valueSpan(form: string, hay: string, match: Match, name: string): Span | null {
    const values = this.rules.values;
    const pos = match.index + match[0].length;
    const two = hay.slice(pos, pos + 2);
    // Escaped quotes (password=\"x\" inside a string literal) delimit the value as plain ones do.
    const opening = two === '\\"' || two === "\\'" ? 2 : 1;
    const quote = two.slice(opening - 1, opening);
    let span: Span | null = null;
    if ((quote === '"' || quote === "'") && (form === 'assignment' || form === 'flag')) {
      const start = pos + opening;
      const bodyEnd = this.extend(values[quote === '"' ? 'double_quoted' : 'single_quoted'], hay, start);
      const close = bodyEnd - opening + 1;
      if (close > start && hay.slice(bodyEnd, bodyEnd + 1) === quote && (opening === 1 || hay.slice(close, bodyEnd) === '\\')) {
        span = [start, close];
      }
    }
    if (!span) {
      const pattern = form === 'assignment' ? values[this.takesLine(hay, match, name) ? 'line' : 'token'] : values[form];
      const found = this.matchAt(pattern, hay, pos + opening - 1);
      if (!found) return null;
      const more = form === 'assignment' ? pattern : values[CONTINUE[form] ?? 'token'];
      span = [pos, this.extend(more, hay, found.index + found[0].length)];
    }
    const value = hay.slice(span[0], span[1]);
    if (this.matchAt(values.keep, value, 0)) return null;
    if (form === 'assignment' && this.proseColon(hay, match, name, value)) return null;
    return span;
  }

  private separator(hay: string, match: Match): string {
    return hay.slice(match.indices?.[1]?.[1] ?? 0, match.index + match[0].length);
  }

  private lineStart(hay: string, index: number): number {
    const low = Math.max(0, index - MAX_NAME);
    // Within the window only: lastIndexOf on the whole text would scan back to its start on every
    // key of a line without newlines (quadratic).
    const newline = hay.slice(low, index).lastIndexOf('\n');
    return newline >= 0 ? low + newline + 1 : low;
  }

  /** Env-style UPPER_NAME=v a l, `export x=...` and line-leading `name: v a l` own the rest of the line. */
  private takesLine(hay: string, match: Match, name: string): boolean {
    const sep = this.separator(hay, match);
    if (sep.includes('=') && UPPER_NAME.test(name)) return true;
    const nameStart = match.indices?.[1]?.[0] ?? 0;
    const lead = hay.slice(this.lineStart(hay, nameStart), nameStart);
    return LINE_LEAD.test(lead) && (sep.includes(':') || lead.includes('export'));
  }

  /** "refresh token: connection reset" is prose, not an assignment: keep all-letter values. */
  private proseColon(hay: string, match: Match, name: string, value: string): boolean {
    const sep = this.separator(hay, match);
    if (sep.trim() !== ':' || sep.endsWith(':') || this.takesLine(hay, match, name)) return false;
    return this.nameKind(name) !== 'password' && ALPHA.test(value);
  }

  // -- argv and structures ----------------------------------------------------------------------
  /** Scrubs an argument vector: --password x, --token=x, -pX (mysql), -u u:p (curl). */
  argv(args: readonly string[]): string[] {
    const out: string[] = [];
    const program = args.length ? String(args[0]).replace(/\\/g, '/').split('/').pop()!.toLowerCase() : '';
    let pending: string | null = null; // the kind of the value the previous option announced
    let userNext = false;
    for (const raw of args) {
      const arg = String(raw);
      const isOption = arg.startsWith('-') && arg.length > 1;
      if (pending !== null) {
        const kind = pending;
        pending = null;
        if (!isOption) {
          out.push(`[redacted:${kind}]`);
          continue;
        }
      }
      if (userNext) {
        userNext = false;
        if (!isOption && arg.includes(':')) {
          out.push(arg.split(':', 1)[0] + ':[redacted:password]');
          continue;
        }
      }
      if (isOption) {
        const eq = arg.indexOf('=');
        const name = eq < 0 ? arg : arg.slice(0, eq);
        const value = eq < 0 ? '' : arg.slice(eq + 1);
        // "-p[redacted:password]" names no secret option: scrubbing scrubbed data changes nothing.
        if (this.isSecretName(name) && !name.includes(REDACTED)) {
          const kind = this.nameKind(name);
          if (eq < 0) {
            out.push(arg);
            pending = kind;
          } else {
            out.push(value ? `${name}=[redacted:${kind}]` : arg);
          }
          continue;
        }
        if (ATTACHED_PASSWORD_FLAG.has(program) && arg.startsWith('-p') && !arg.startsWith('--') && arg.length > 2) {
          out.push('-p[redacted:password]');
          continue;
        }
        if (arg === SEPARATE_PASSWORD_FLAG[program]) {
          out.push(arg);
          pending = 'password';
          continue;
        }
        if (program === 'curl' && CURL_USER_FLAGS.has(name)) {
          if (eq >= 0 && value.includes(':')) out.push(`${name}=${value.split(':', 1)[0]}:[redacted:password]`);
          else {
            out.push(arg);
            userNext = true;
          }
          continue;
        }
        if (program === 'curl' && arg.startsWith('-u') && arg.includes(':')) {
          out.push(arg.split(':', 1)[0] + ':[redacted:password]');
          continue;
        }
      }
      out.push(this.text(arg));
    }
    return out;
  }

  /** Scrubs a JSON-like value: values under secret names are replaced whole, strings scrubbed. */
  value(value: unknown, key = '', depth = 0): unknown {
    if (depth > 32) return '[truncated]';
    // Python's `v in (None, "", True, False)` also holds for 0 and 1 (0 == False): kept alike.
    const trivial = value === null || value === undefined || value === '' || value === true || value === false || value === 0 || value === 1;
    if (key && !trivial && this.isSecretName(key)) {
      if (typeof value === 'object' && value !== null && Object.keys(value).length === 0) return value;
      if (typeof value === 'string' && value.startsWith(REDACTED)) return value;
      return `[redacted:${this.nameKind(key)}]`;
    }
    if (typeof value === 'string') return this.text(value);
    if (Array.isArray(value)) {
      if (value.length && value.every((v) => typeof v === 'string')) return this.argv(value as string[]);
      return value.map((v) => this.value(v, '', depth + 1));
    }
    if (typeof value === 'object' && value !== null) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = this.value(v, k, depth + 1);
      return out;
    }
    return value;
  }
}

let shared: Scrubber | undefined;

/** The SDK's scrubber, built on first use (the page pays for compiling rules only when it exports). */
export function scrubber(): Scrubber {
  return (shared ??= new Scrubber());
}
