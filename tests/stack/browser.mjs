// Opens the whole-stack test page in headless Debian Chromium and waits until the page's error
// reached the collector.
//   node browser.mjs <js-instrumentation dir> <chromium path> <page URL> <collector URL>
// Prints one JSON line: the page's console lines, page errors, and the collector's answers.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [jsDir, chromiumPath, pageUrl, collectorUrl] = process.argv.slice(2);
if (!collectorUrl) throw new Error('usage: browser.mjs <js-instrumentation dir> <chromium> <page URL> <collector URL>');
const { chromium } = await import(pathToFileURL(join(jsDir, 'node_modules/playwright-core/index.mjs')).href);

const out = { console: [], pageErrors: [], exports: [], failed: [] };
const profile = await mkdtemp(join(tmpdir(), 'autoheal-stack-chromium-'));
let browser;
try {
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const page = await browser.newPage();
  page.on('console', (m) => out.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => out.pageErrors.push(String(e.stack ?? e)));
  page.on('requestfailed', (r) => out.failed.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
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
  // Whatever is still queued (e.g. the error span) goes out before the browser closes.
  out.flushed = await page.evaluate(() => window.OtelAutoheal.forceFlush(10000).then(() => true));
  out.stats = await page.evaluate(() => window.OtelAutoheal.getSdk()?.stats?.() ?? null);
} catch (err) {
  out.error = String(err?.stack ?? err);
} finally {
  await browser?.close().catch(() => undefined);
  await rm(profile, { recursive: true, force: true });
}
console.log(`RESULT ${JSON.stringify(out)}`);
