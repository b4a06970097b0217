// Runs the real otel-autoheal service (`python -m otel_autoheal serve`) on free ports with a
// temporary state dir. The interpreter comes from AUTOHEAL_PYTHON (default `python3`), e.g.
// AUTOHEAL_PYTHON=/work/main/.venv/bin/python. `autohealAvailable()` says whether it imports.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { startProcess } from './processes.mjs';
import { waitFor } from './receiver.mjs';

const run = promisify(execFile);
export const PYTHON = process.env.AUTOHEAL_PYTHON ?? 'python3';

export async function autohealAvailable() {
  try {
    await run(PYTHON, ['-c', 'import otel_autoheal.cli'], { timeout: 60000 });
    return true;
  } catch {
    return false;
  }
}

async function freePort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

export async function startAutoheal({ corsOrigins = [], traceWait = 1, env = {} } = {}) {
  const stateDir = await mkdtemp(join(tmpdir(), 'autoheal-state-'));
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const args = ['-m', 'otel_autoheal', 'serve', '--otlp-grpc', `127.0.0.1:${grpcPort}`, '--otlp-http', `127.0.0.1:${httpPort}`,
    '--state', stateDir, '--trace-wait', String(traceWait)];
  for (const o of corsOrigins) args.push('--cors-origin', o);
  const proc = startProcess(PYTHON, args, { env });
  const httpEndpoint = `http://127.0.0.1:${httpPort}`;
  await waitFor(
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`otel-autoheal exited early:\n${proc.stderr}`);
      try {
        return (await fetch(`${httpEndpoint}/healthz`)).status === 200;
      } catch {
        return false;
      }
    },
    { timeout: 60000, what: 'otel-autoheal /healthz' },
  );
  const service = {
    httpEndpoint,
    stateDir,
    proc,
    async issues() {
      const { stdout } = await run(PYTHON, ['-m', 'otel_autoheal', 'issues', '--state', stateDir, '--json'], { timeout: 60000 });
      return JSON.parse(stdout);
    },
    async waitForIssues(predicate, timeout = 60000) {
      return waitFor(async () => {
        const list = await service.issues();
        return predicate(list) ? list : false;
      }, { timeout, interval: 300, what: 'otel-autoheal issues' });
    },
    async stop() {
      await proc.kill();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
  return service;
}
