// Opens the whole-stack test page in headless Debian Chromium and waits until the page's error
// reached the collector.
//   node browser.mjs <js-instrumentation dir> <chromium path> <page URL> <collector URL>
// Prints one JSON line: the page's console lines, page errors, and the collector's answers.
import { visitAndFlush } from '../chromium.mjs';

const [jsDir, chromiumPath, pageUrl, collectorUrl] = process.argv.slice(2);
if (!collectorUrl) throw new Error('usage: browser.mjs <js-instrumentation dir> <chromium> <page URL> <collector URL>');

const out = { exports: [] };
await visitAndFlush(jsDir, chromiumPath, 'stack', out, async (page) => {
  const exported = (path) =>
    page.waitForResponse((r) => r.url().startsWith(collectorUrl + path) && r.request().method() === 'POST', {
      timeout: 60000,
    });
  const logs = exported('/v1/logs');
  const traces = exported('/v1/traces');
  await page.goto(pageUrl, { waitUntil: 'load' });
  for (const response of await Promise.all([logs, traces])) {
    out.exports.push({ url: response.url(), status: response.status(), cors: response.headers()['access-control-allow-origin'] ?? null });
  }
});
