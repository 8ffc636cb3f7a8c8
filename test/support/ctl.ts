/** Runs `meshreg ctl ...` as a child process and collects its output. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/meshreg.js');

export interface CtlRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function ctl(args: readonly string[], env: Record<string, string>): Promise<CtlRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, 'ctl', ...args],
      { env: { ...process.env, ...env }, timeout: 15_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
