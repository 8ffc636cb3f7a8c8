/** Runs `meshreg ctl ...` as a child process and collects its output; a canned admin server for it. */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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

/** A canned answer: status and raw body text (not necessarily JSON, not necessarily valid). */
export interface CannedAnswer {
  readonly status: number;
  readonly text: string;
}

/**
 * An admin server that answers each `GET`/`POST` path with a canned answer (404 for others): the
 * real servers never send a malformed answer, so ctl's handling of one is tested against this.
 * `{base}` in an answer's text is replaced by the server's own address.
 */
export async function cannedAdmin(answers: Readonly<Record<string, CannedAnswer>>): Promise<{
  readonly url: string;
  readonly close: () => Promise<void>;
}> {
  const server = createServer((req, res) => {
    const a = answers[req.url ?? ''] ?? { status: 404, text: '' };
    res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.text.replaceAll('{base}', url));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
