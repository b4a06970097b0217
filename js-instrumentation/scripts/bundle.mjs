// Builds the browser IIFE bundle and prints its raw and gzip sizes.
import { build } from 'esbuild';
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const outfile = 'dist/otel-autoheal.iife.min.js';
await build({
  entryPoints: ['src/browser.ts'],
  bundle: true,
  minify: true,
  format: 'iife',
  globalName: 'OtelAutoheal',
  platform: 'browser',
  target: ['es2020'],
  sourcemap: 'linked',
  legalComments: 'none',
  outfile,
});
const code = readFileSync(outfile);
const sizes = { file: outfile, raw: code.length, gzip: gzipSync(code, { level: 9 }).length };
writeFileSync('dist/bundle-size.json', JSON.stringify(sizes, null, 2) + '\n');
console.log(`${outfile}: ${sizes.raw} bytes raw, ${sizes.gzip} bytes gzip`);
