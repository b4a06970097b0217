// Opens the test shop in headless Debian Chromium, waits until its checkout threw, and flushes
// the JS SDK so the error reaches otel-autoheal.
//   node throw.mjs <js-instrumentation dir> <chromium path> <page URL>
// Prints one JSON line: the page's errors (Chromium's own stack text) and the console.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [jsDir, chromiumPath, pageUrl] = process.argv.slice(2);
if (!pageUrl) throw new Error('usage: throw.mjs <js-instrumentation dir> <chromium> <page URL>');
const { chromium } = await import(pathToFileURL(join(jsDir, 'node_modules/playwright-core/index.mjs')).href);

const out = { console: [], pageErrors: [], failed: [] };
const profile = await mkdtemp(join(tmpdir(), 'autoheal-smaps-chromium-'));
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
  await page.goto(pageUrl, { waitUntil: 'load' });
  await page.waitForFunction(() => window.__thrown === true, null, { timeout: 60000 });
  out.flushed = await page.evaluate(() => window.OtelAutoheal.forceFlush(10000).then(() => true));
  out.stats = await page.evaluate(() => window.OtelAutoheal.getSdk()?.stats?.() ?? null);
} catch (err) {
  out.error = String(err?.stack ?? err);
} finally {
  await browser?.close().catch(() => undefined);
  await rm(profile, { recursive: true, force: true });
}
console.log(`RESULT ${JSON.stringify(out)}`);
