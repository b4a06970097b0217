// Generates src/scrub-rules.ts from the project's one rule file, otel_autoheal/scrub_rules.toml
// (the rules the service and the Python instrumentation load), translated to JavaScript RegExp.
//
//   node scripts/scrub-rules.mjs           write src/scrub-rules.ts
//   node scripts/scrub-rules.mjs --check   fail when src/scrub-rules.ts is stale (npm run build does this)
//   node scripts/scrub-rules.mjs --dump    print the parsed TOML as JSON (a test compares it with tomllib)
//
// The output is committed: the package builds from this directory alone (npm pack, a Docker
// context), where the TOML is out of reach. The rule file's syntax is the common subset of RE2 and
// Python `re` with bounded, non-nested repeats; that subset is also safe for V8's backtracking
// engine. Translation: `(?i)` becomes the `i` flag, `(?i:...)` spells each letter as [xX], `\s`
// becomes Python's ASCII set (V8's is Unicode). Any other escape or construct is refused here,
// so a new rule cannot silently mean something else in JavaScript.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const TOML = fileURLToPath(new URL('../../otel_autoheal/scrub_rules.toml', import.meta.url));
const OUT = fileURLToPath(new URL('../src/scrub-rules.ts', import.meta.url));

/** The TOML subset the rule file uses: comments, tables, arrays of tables, strings ('''…''', '…', "…"), integers, nested arrays. */
export function parseToml(text) {
  const root = {};
  let table = root;
  let i = 0;
  const fail = (what) => {
    const line = text.slice(0, i).split('\n').length;
    throw new Error(`scrub_rules.toml line ${line}: ${what}`);
  };
  const skip = () => {
    for (;;) {
      while (i < text.length && /[ \t\r\n]/.test(text[i])) i++;
      if (text[i] !== '#') return;
      while (i < text.length && text[i] !== '\n') i++;
    }
  };
  const value = () => {
    skip();
    if (text.startsWith("'''", i)) {
      const end = text.indexOf("'''", i + 3);
      if (end < 0) fail('unterminated literal string');
      let stop = end;
      while (text[stop + 3] === "'") stop++; // up to two quotes may end the content
      let body = text.slice(i + 3, stop);
      if (body.startsWith('\n')) body = body.slice(1);
      i = stop + 3;
      return body;
    }
    if (text[i] === "'") {
      const end = text.indexOf("'", i + 1);
      const body = text.slice(i + 1, end);
      if (end < 0 || body.includes('\n')) fail('bad literal string');
      i = end + 1;
      return body;
    }
    if (text[i] === '"') {
      let out = '';
      for (i++; text[i] !== '"'; i++) {
        if (i >= text.length || text[i] === '\n') fail('unterminated string');
        if (text[i] === '\\') {
          const esc = { n: '\n', t: '\t', '"': '"', '\\': '\\' }[text[++i]];
          if (esc === undefined) fail(`unsupported escape \\${text[i]}`);
          out += esc;
        } else out += text[i];
      }
      i++;
      return out;
    }
    if (text[i] === '[') {
      i++;
      const items = [];
      for (;;) {
        skip();
        if (text[i] === ']') break;
        items.push(value());
        skip();
        if (text[i] === ',') i++;
        else if (text[i] !== ']') fail('expected , or ]');
      }
      i++;
      return items;
    }
    const number = /^-?[0-9][0-9_]*/.exec(text.slice(i, i + 32));
    if (number) {
      i += number[0].length;
      return Number(number[0].replace(/_/g, ''));
    }
    if (text.startsWith('true', i) || text.startsWith('false', i)) {
      const v = text.startsWith('true', i);
      i += v ? 4 : 5;
      return v;
    }
    return fail('unsupported value');
  };
  for (;;) {
    skip();
    if (i >= text.length) return root;
    if (text.startsWith('[[', i)) {
      const end = text.indexOf(']]', i);
      const name = text.slice(i + 2, end).trim();
      if (!/^[a-z_]+$/.test(name)) fail('unsupported table name');
      table = {};
      (root[name] ??= []).push(table);
      i = end + 2;
    } else if (text[i] === '[') {
      const end = text.indexOf(']', i);
      const name = text.slice(i + 1, end).trim();
      if (!/^[a-z_]+$/.test(name)) fail('unsupported table name');
      table = root[name] = {};
      i = end + 1;
    } else {
      const key = /^[A-Za-z0-9_-]+/.exec(text.slice(i, i + 100));
      if (!key) fail('expected a key');
      i += key[0].length;
      skip();
      if (text[i] !== '=') fail('expected =');
      i++;
      table[key[0]] = value();
      const rest = /^[ \t]*(?:#[^\n]*)?(?:\n|$)/.exec(text.slice(i, i + 1000));
      if (!rest) fail('garbage after value');
    }
  }
}

const ASCII_SPACE = '\\t\\n\\v\\f\\r ';
const PLAIN_ESCAPES = new Set([...'bdnrt', ...'\\.-[](){}*+?|^$/\'"']);

/** One rule-file regex as a JavaScript RegExp source and flags (see the header for what changes). */
export function translate(pattern) {
  let flags = '';
  let src = pattern;
  if (src.startsWith('(?i)')) {
    flags = 'i';
    src = src.slice(4);
  }
  let out = '';
  let inClass = false;
  let foldDepth = -1; // depth of an open (?i: group, -1 outside
  let depth = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') {
      const e = src[++i];
      if (e === 's') out += inClass ? ASCII_SPACE : `[${ASCII_SPACE}]`;
      else if (PLAIN_ESCAPES.has(e)) {
        if (e === 'b' && inClass) throw new Error(`\\b inside a class in ${pattern}`);
        out += '\\' + e;
      } else throw new Error(`escape \\${e} has no checked translation: ${pattern}`);
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      if (foldDepth >= 0) throw new Error(`a class inside (?i:...) in ${pattern}`);
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      if (src[i + 1] === '^') out += src[++i];
      if (src[i + 1] === ']') out += '\\' + src[++i];
      continue;
    }
    if (c === '(') {
      if (src.startsWith('(?i:', i)) {
        if (foldDepth >= 0) throw new Error(`nested (?i:) in ${pattern}`);
        foldDepth = depth;
        out += '(?:';
        i += 3;
      } else if (src[i + 1] === '?' && src[i + 2] !== ':') {
        throw new Error(`group (${src.slice(i, i + 4)} has no checked translation: ${pattern}`);
      } else out += c;
      depth++;
      continue;
    }
    if (c === ')') {
      depth--;
      if (depth === foldDepth) foldDepth = -1;
      out += c;
      continue;
    }
    if (foldDepth >= 0) {
      // Only the name stems' alternation is case-folded: letters, digits and |.
      if (!/[A-Za-z0-9|]/.test(c)) throw new Error(`(?i:...) holds more than an alternation of words: ${pattern}`);
      out += /[A-Za-z]/.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c;
      continue;
    }
    out += c;
  }
  if (inClass || depth !== 0) throw new Error(`unbalanced regex: ${pattern}`);
  new RegExp(out, flags + 'd'); // fails here, not in a user's browser
  return { source: out, flags };
}

export function generate(tomlText) {
  const rules = parseToml(tomlText);
  const stems = rules.names.stems.join('|');
  const out = {
    maxTextChars: rules.max_text_chars,
    names: rules.names,
    keyed: rules.keyed.map((k) => ({ form: k.value, key: translate(k.key.replace('{stems}', stems)) })),
    values: Object.fromEntries(Object.entries(rules.values).map(([name, p]) => [name, translate(p)])),
    blocks: (rules.block ?? []).map((b) => ({
      kind: b.id,
      begin: translate(b.begin),
      end: translate(b.end),
      keywords: b.keywords ?? [],
      maxChars: b.max_chars,
    })),
    rules: rules.rule.map((r) => ({
      kind: r.id,
      regex: translate(r.regex),
      keywords: r.keywords ?? [],
      luhn: r.check === 'luhn',
      extend: r.extend === undefined ? null : translate(r.extend),
    })),
  };
  const sha256 = createHash('sha256').update(tomlText).digest('hex');
  return (
    '// GENERATED by scripts/scrub-rules.mjs from otel_autoheal/scrub_rules.toml: do not edit.\n' +
    '// Regenerate with `npm run scrub-rules` after changing the rule file (build and tests check it).\n' +
    "import type { ScrubRules } from './scrub.js';\n\n" +
    `export const RULES_SHA256 = '${sha256}';\n` +
    `export const RULES: ScrubRules = ${JSON.stringify(out, null, 1)};\n`
  );
}

const mode = process.argv[2];
if (mode === '--dump') {
  process.stdout.write(JSON.stringify(parseToml(readFileSync(TOML, 'utf8'))));
} else if (mode === '--check') {
  if (!existsSync(TOML)) {
    console.log('scrub-rules: otel_autoheal/scrub_rules.toml not found (building outside the repository); using the committed rules');
  } else if (!existsSync(OUT) || readFileSync(OUT, 'utf8') !== generate(readFileSync(TOML, 'utf8'))) {
    console.error('scrub-rules: src/scrub-rules.ts is stale: otel_autoheal/scrub_rules.toml changed; run `npm run scrub-rules`');
    process.exit(1);
  }
} else if (mode === undefined) {
  writeFileSync(OUT, generate(readFileSync(TOML, 'utf8')));
  console.log(`scrub-rules: wrote ${OUT}`);
} else {
  console.error(`scrub-rules: unknown option ${mode}`);
  process.exit(2);
}
