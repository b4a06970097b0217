// Scrubbing throughput of the SDK's scrubber (V8), on the inputs bench/scrub.py uses for the
// Python engines: a realistic mix (~5% of texts carry a corpus secret) and hostile repetitions at
// 128 KB and 256 KB with their growth time(2n)/time(n) (about 2 linear, about 4 quadratic).
//   npm run build && node bench/scrub.mjs [--quick]
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

import { Scrubber } from '../dist/scrub.js';

const quick = process.argv.includes('--quick');
const scrubber = new Scrubber();

let seed = 7;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));
const hex = (n) => Array.from({ length: n }, () => '0123456789abcdef'[int(0, 15)]).join('');

const corpus = readFileSync(new URL('../../tests/testdata/secrets/corpus.jsonl', import.meta.url), 'utf8')
  .split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.kind === 'text').map((e) => e.input);
const templates = [
  (n, m) => `Traceback (most recent call last):\n  File "/app/service/handlers/orders.py", line ${n}, in create_order\n    order = repository.save(payload)\n  File "/app/service/db.py", line ${m}, in save\n    cursor.execute(sql, params)\npsycopg.errors.UniqueViolation: duplicate key value violates unique constraint "orders_pkey"`,
  (n, m) => `TypeError: Cannot read properties of undefined (reading 'items')\n    at renderCart (https://shop.example.com/static/js/main.${hex(8)}.js:1:${n})\n    at HTMLButtonElement.onClick (https://shop.example.com/static/js/main.${hex(8)}.js:1:${m})`,
  (n, m) => `GET https://api.example.com/v1/users/${n}/orders?page=${m}&limit=50 returned 503 after 3 retries (trace_id=${hex(32)})`,
  (n, m) => `{"user_id": ${n}, "cart": {"items": ${m}, "currency": "EUR"}, "feature_flags": ["checkout_v2", "fast_pay"], "region": "eu-west-1"}`,
  (n, m) => `2025-01-01T12:00:${String(m).padStart(2, '0')}Z INFO worker-${n} processed batch ${hex(32)} in ${m}ms (queue depth ${n})`,
  (n) => `ValueError: invalid literal for int() with base 10: 'abc${n}' while parsing config section [database] key port`,
];
const mix = [];
for (let total = 0; total < (quick ? 400_000 : 2_000_000); ) {
  const text = random() < 0.05 ? corpus[int(0, corpus.length - 1)] : templates[int(0, templates.length - 1)](int(1, 9999), int(0, 59));
  mix.push(text);
  total += text.length;
}

/** Best seconds over at least 3 runs (up to 25 or one second in all). */
function timed(texts) {
  let best = Infinity;
  for (let runs = 0, spent = 0; runs < 3 || (spent < 1 && runs < 25); runs++) {
    const t0 = performance.now();
    for (const t of texts) scrubber.text(t);
    const elapsed = (performance.now() - t0) / 1000;
    best = Math.min(best, elapsed);
    spent += elapsed;
  }
  return best;
}

const mb = (texts) => texts.reduce((n, t) => n + Buffer.byteLength(t), 0) / 1e6;
console.log(`## Realistic mix: ${mix.length} texts, ${mb(mix).toFixed(2)} MB: ${(mb(mix) / timed(mix)).toFixed(2)} MB/s\n`);

const ADVERSARIAL = {
  '`a.` repeated': 'a.', '`a=` repeated': 'a=', '`:` repeated': ':', '`@` repeated': '@', '`a:b@` repeated': 'a:b@',
  'token-like chars': 'A', '`password=` repeated': 'password=', '`http://a:` repeated': 'http://a:', '`--token ` repeated': '--token ',
  '`Authorization: ` repeated': 'Authorization: ', 'escaped quotes `\\"`': '\\"',
};
const size = quick ? 65_536 : 262_144;
console.log(`## Hostile inputs, ${size / 2048} -> ${size / 1024} KB\n\n| input | MB/s | growth |\n| --- | ---: | ---: |`);
for (const [name, unit] of Object.entries(ADVERSARIAL)) {
  const half = [unit.repeat(Math.floor(size / 2 / unit.length))];
  const full = [unit.repeat(Math.floor(size / unit.length))];
  const tHalf = timed(half);
  const tFull = timed(full);
  console.log(`| ${name} | ${(mb(full) / tFull).toFixed(1)} | ${(tFull / tHalf).toFixed(1)}× |`);
}
