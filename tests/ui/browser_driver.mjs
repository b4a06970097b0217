// Drives headless Debian Chromium for tests/ui: one JSON command per stdin line, one JSON answer
// per stdout line ("RESULT {...}"), so that pytest can act between steps (send OTLP, then watch
// the page change).
//   node browser_driver.mjs <js-instrumentation dir> <chromium path>
// Every dialog (alert/confirm/prompt), console error and page error is recorded and dismissed:
// the XSS tests read them with {"cmd": "events"}.
import { createInterface } from 'node:readline';

import { launchChromium } from '../chromium.mjs';

const [jsDir, chromiumPath] = process.argv.slice(2);
if (!chromiumPath) throw new Error('usage: browser_driver.mjs <js-instrumentation dir> <chromium>');

const events = { dialogs: [], consoleErrors: [], pageErrors: [] };
const browser = await launchChromium(jsDir, chromiumPath, 'ui', { viewport: { width: 1280, height: 900 } });
const page = browser.context.pages()[0] ?? (await browser.context.newPage());
page.on('dialog', async (d) => {
  events.dialogs.push(`${d.type()}: ${d.message()}`);
  await d.dismiss().catch(() => undefined);
});
page.on('console', (m) => { if (m.type() === 'error') events.consoleErrors.push(m.text()); });
page.on('pageerror', (e) => events.pageErrors.push(String(e.stack ?? e)));

async function navigating(action) {
  const [response] = await Promise.all([page.waitForNavigation({ timeout: 30000 }), action()]);
  return { status: response?.status() ?? null, url: page.url() };
}

const commands = {
  goto: async ({ url }) => {
    const response = await page.goto(url, { waitUntil: 'load', timeout: 30000 });
    return { status: response?.status() ?? null, url: page.url() };
  },
  viewport: async ({ width, height }) => { await page.setViewportSize({ width, height }); return {}; },
  colorScheme: async ({ scheme }) => { await page.emulateMedia({ colorScheme: scheme }); return {}; },
  eval: async ({ expression }) => ({ value: await page.evaluate(expression) }),
  count: async ({ selector }) => ({ value: await page.locator(selector).count() }),
  text: async ({ selector }) => ({ value: await page.locator(selector).first().textContent({ timeout: 10000 }) }),
  texts: async ({ selector }) => ({ value: await page.locator(selector).allTextContents() }),
  attr: async ({ selector, name }) => ({ value: await page.locator(selector).first().getAttribute(name, { timeout: 10000 }) }),
  select: async ({ selector, value }) => navigating(() => page.selectOption(selector, value)),
  fill: async ({ selector, value }) => { await page.fill(selector, value); return {}; },
  pressNavigating: async ({ key }) => navigating(() => page.keyboard.press(key)),
  press: async ({ key }) => { await page.keyboard.press(key); return {}; },
  focused: async () => ({ value: await page.evaluate(() => {
    const e = document.activeElement;
    return e ? { tag: e.tagName, text: (e.textContent || '').trim().slice(0, 200), href: e.getAttribute('href') } : null;
  }) }),
  waitText: async ({ selector, different, timeout }) => {
    await page.waitForFunction(([s, d]) => {
      const e = document.querySelector(s);
      return e && e.textContent.trim() !== d;
    }, [selector, different], { timeout: timeout ?? 60000 });
    return { value: await page.locator(selector).first().textContent() };
  },
  screenshot: async ({ path, fullPage }) => { await page.screenshot({ path, fullPage: !!fullPage }); return {}; },
  events: async () => ({ value: events }),
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const request = JSON.parse(line);
  if (request.cmd === 'close') break;
  let answer;
  try {
    answer = { ok: true, ...(await commands[request.cmd](request)) };
  } catch (err) {
    answer = { ok: false, error: String(err?.stack ?? err) };
  }
  process.stdout.write(`RESULT ${JSON.stringify(answer)}\n`);
}
await browser.close();
process.stdout.write('RESULT {"ok": true, "closed": true}\n');
