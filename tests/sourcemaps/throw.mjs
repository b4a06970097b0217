// Opens the test shop in headless Debian Chromium, waits until its checkout threw, and flushes
// the JS SDK so the error reaches otel-autoheal.
//   node throw.mjs <js-instrumentation dir> <chromium path> <page URL>
// Prints one JSON line: the page's errors (Chromium's own stack text) and the console.
import { visitAndFlush } from '../chromium.mjs';

const [jsDir, chromiumPath, pageUrl] = process.argv.slice(2);
if (!pageUrl) throw new Error('usage: throw.mjs <js-instrumentation dir> <chromium> <page URL>');

await visitAndFlush(jsDir, chromiumPath, 'smaps', {}, async (page) => {
  await page.goto(pageUrl, { waitUntil: 'load' });
  await page.waitForFunction(() => window.__thrown === true, null, { timeout: 60000 });
});
