// A small real OTLP/HTTP JSON receiver for tests: stores every request body, answers CORS
// preflights for any origin (as the autoheal service does with --cors-origin), and flattens
// the payloads into spans and log records with their resource attributes.
import { createServer } from 'node:http';
import { gunzipSync } from 'node:zlib';

export function attrsToObject(list) {
  const out = {};
  for (const { key, value } of list ?? []) out[key] = anyValue(value);
  return out;
}

function anyValue(v) {
  if (!v) return undefined;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('arrayValue' in v) return (v.arrayValue.values ?? []).map(anyValue);
  return undefined;
}

export async function startReceiver() {
  const requests = [];
  const server = createServer((req, res) => {
    const origin = req.headers.origin;
    if (origin) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', req.headers['access-control-request-headers'] ?? 'content-type');
      res.setHeader('Access-Control-Max-Age', '600');
      res.writeHead(204).end();
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        const json = JSON.parse(body.toString('utf8'));
        requests.push({ path: req.url, headers: req.headers, json });
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
      } catch (e) {
        res.writeHead(400).end(String(e));
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const receiver = {
    url: `http://127.0.0.1:${port}`,
    requests,
    spans() {
      const out = [];
      for (const r of requests.filter((r) => r.path === '/v1/traces')) {
        for (const rs of r.json.resourceSpans ?? []) {
          const resource = attrsToObject(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              out.push({
                ...s,
                resource,
                attrs: attrsToObject(s.attributes),
                events: (s.events ?? []).map((e) => ({ ...e, attrs: attrsToObject(e.attributes) })),
              });
            }
          }
        }
      }
      return out;
    },
    logs() {
      const out = [];
      for (const r of requests.filter((r) => r.path === '/v1/logs')) {
        for (const rl of r.json.resourceLogs ?? []) {
          const resource = attrsToObject(rl.resource?.attributes);
          for (const sl of rl.scopeLogs ?? []) {
            for (const l of sl.logRecords ?? []) {
              out.push({ ...l, resource, attrs: attrsToObject(l.attributes), text: l.body?.stringValue });
            }
          }
        }
      }
      return out;
    },
    async waitFor(fn, { timeout = 30000, what = 'condition' } = {}) {
      return waitFor(() => fn(receiver), { timeout, what });
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return receiver;
}

/** Polls `fn` until it returns a truthy value; throws with the last value after `timeout`. */
export async function waitFor(fn, { timeout = 30000, interval = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}
