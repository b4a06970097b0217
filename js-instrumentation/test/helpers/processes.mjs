// Child processes for tests: spawned in their own process group and killed as a group.
import { spawn } from 'node:child_process';

const live = new Set();

export function startProcess(command, args, { env, cwd } = {}) {
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const proc = {
    child,
    stdout: '',
    stderr: '',
    exit: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    kill() {
      if (child.exitCode !== null || child.signalCode !== null) return proc.exit;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
      const hard = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }, 5000);
      return proc.exit.finally(() => clearTimeout(hard));
    },
  };
  child.stdout.setEncoding('utf8').on('data', (d) => (proc.stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (proc.stderr += d));
  live.add(proc);
  proc.exit.then(() => live.delete(proc));
  return proc;
}

export async function killAll() {
  await Promise.all([...live].map((p) => p.kill()));
}

process.on('exit', () => {
  for (const p of live) {
    try {
      process.kill(-p.child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});
