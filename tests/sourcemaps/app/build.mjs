// Bundles and minifies the test shop with esbuild, with a linked source map.
//   node build.mjs <project dir> <variant: a | b>
// Copies src/ to <project dir>/src and writes <project dir>/dist/assets/app.min.js(.map), the
// layout of a real project (the map names its sources ../../src/…).
// Variant b adds code above the bug (a discount helper at the top of src/cart.js), so its
// minified names, columns and original line numbers differ from variant a's.
import { build } from 'esbuild';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [project, variant] = process.argv.slice(2);
if (!project || !['a', 'b'].includes(variant)) throw new Error('usage: build.mjs <project dir> <a|b>');
const here = dirname(fileURLToPath(import.meta.url));
cpSync(join(here, 'src'), join(project, 'src'), { recursive: true });
if (variant === 'b') {
  const cart = join(project, 'src', 'cart.js');
  const extra = [
    '// Release 1.1.0: member discounts.',
    'export function memberDiscount(total, member) {',
    '  const rate = member && member.tier === "gold" ? 0.1 : 0.02;',
    '  return Math.round(total * rate * 100) / 100;',
    '}',
    '',
  ].join('\n');
  writeFileSync(cart, extra + readFileSync(cart, 'utf8'));
  const main = join(project, 'src', 'main.js');
  writeFileSync(main, readFileSync(main, 'utf8').replace(
    "import { cartTotal } from './cart.js';",
    "import { cartTotal, memberDiscount } from './cart.js';\nwindow.__discount = memberDiscount(100, { tier: 'gold' });",
  ));
}
await build({
  entryPoints: [join(project, 'src', 'main.js')],
  absWorkingDir: project,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  sourcemap: 'linked',
  sourcesContent: true,
  outfile: join(project, 'dist', 'assets', 'app.min.js'),
  logLevel: 'warning',
});
