// Headless Debian Chromium for the browser tests (tests/ui, tests/sourcemaps, tests/stack), driven
// by the playwright-core of js-instrumentation/node_modules, on a throw-away profile.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Launches Chromium at `chromiumPath` with a fresh profile named after `name`; `options` are added
 * to playwright's launch options. `close()` ends the browser and removes the profile.
 */
export async function launchChromium(jsDir, chromiumPath, name, options = {}) {
  const { chromium } = await import(pathToFileURL(join(jsDir, 'node_modules/playwright-core/index.mjs')).href);
  const profile = await mkdtemp(join(tmpdir(), `autoheal-${name}-chromium-`));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
      ...options,
    });
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
  const close = async () => {
    await context.close().catch(() => undefined);
    await rm(profile, { recursive: true, force: true });
  };
  return { context, close };
}

/**
 * Opens one page, records its console lines, page errors and failed requests in `out`, runs
 * `visit(page)`, then flushes the page's JS SDK (its stats go to `out` too) and prints
 * `RESULT <out as JSON>`; a failure is `out.error`, and the browser is closed either way.
 */
export async function visitAndFlush(jsDir, chromiumPath, name, out, visit) {
  Object.assign(out, { console: [], pageErrors: [], failed: [] });
  let browser;
  try {
    browser = await launchChromium(jsDir, chromiumPath, name);
    const page = await browser.context.newPage();
    page.on('console', (m) => out.console.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => out.pageErrors.push(String(e.stack ?? e)));
    page.on('requestfailed', (r) => out.failed.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
    await visit(page);
    // Whatever is still queued (e.g. the error span) goes out before the browser closes.
    out.flushed = await page.evaluate(() => window.OtelAutoheal.forceFlush(10000).then(() => true));
    out.stats = await page.evaluate(() => window.OtelAutoheal.getSdk()?.stats?.() ?? null);
  } catch (err) {
    out.error = String(err?.stack ?? err);
  } finally {
    await browser?.close();
  }
  console.log(`RESULT ${JSON.stringify(out)}`);
}
