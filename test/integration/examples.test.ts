/**
 * The examples in examples/ — Python (standard library), Java (single file, JDK only), shell (curl)
 * and Node (the npm consul client) — run for real against a `meshreg dev`: each registers with a
 * health check, discovers a peer, and sees the peer's deregistration through a blocking watch.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { http } from '../support/http.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

interface Example {
  readonly name: string;
  readonly service: string;
  readonly command: string;
  readonly args: readonly string[];
}

const EXAMPLES: readonly Example[] = [
  {
    name: 'python',
    service: 'py-app',
    command: 'python3',
    args: [path.join(ROOT, 'examples/python/app.py')],
  },
  { name: 'java', service: 'java-app', command: 'java', args: [path.join(ROOT, 'examples/java/App.java')] },
  { name: 'shell', service: 'sh-app', command: 'sh', args: [path.join(ROOT, 'examples/shell/app.sh')] },
  {
    name: 'node',
    service: 'node-app',
    command: process.execPath,
    args: [path.join(ROOT, 'dist/examples/node/app.js')],
  },
];

interface Running {
  readonly child: ChildProcess;
  out: string;
  err: string;
  readonly exit: Promise<number | null>;
}

describe('examples', () => {
  let dev: Started;
  let agent = '';
  let cleanup: () => Promise<void> = () => Promise.resolve();
  const running = new Map<string, Running>();

  before(async () => {
    const tmp = await tempDir();
    cleanup = tmp.cleanup;
    dev = await startMeshreg('dev', { MESHREG_AGENT_DATA_DIR: tmp.dir });
    agent = dev.addresses['agent'] ?? '';
  });

  after(async () => {
    for (const r of running.values()) r.child.kill('SIGKILL');
    await dev.stop();
    await cleanup();
  });

  test('examples - each registers with a health check, discovers a peer and sees it leave', async () => {
    for (const ex of EXAMPLES) {
      const child = spawn(ex.command, [...ex.args], {
        env: { ...process.env, MESHREG_AGENT: agent, SERVICE: ex.service, PEER: 'peer' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const r: Running = {
        child,
        out: '',
        err: '',
        exit: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
      };
      child.stdout?.setEncoding('utf8').on('data', (d: string) => (r.out += d));
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (r.err += d));
      running.set(ex.name, r);
    }
    const all = (re: RegExp): boolean => [...running.values()].every((r) => re.test(r.out));
    const report = (): string => [...running].map(([n, r]) => `--- ${n}\n${r.out}${r.err}`).join('\n');
    await waitFor(
      () => `every example registered\n${report()}`,
      () => all(/registered \S+-1/),
      60_000,
    );

    // Each one's own service is passing: its health check runs and succeeds.
    await waitFor(
      'examples passing',
      async () => {
        for (const ex of EXAMPLES) {
          const r = await http('GET', `${agent}/v1/health/service/${ex.service}?passing`);
          if ((r.body as unknown[]).length !== 1) return false;
        }
        return true;
      },
      20_000,
    );

    await http('PUT', `${agent}/v1/agent/service/register`, {
      Name: 'peer',
      ID: 'peer-1',
      Address: '127.0.0.1',
      Port: 7777,
    });
    await waitFor(
      () => `every example discovered the peer\n${report()}`,
      () => all(/discovered peer .*7777/),
      30_000,
    );
    await http('PUT', `${agent}/v1/agent/service/deregister/peer-1`);
    await waitFor(
      () => `every example saw the peer leave\n${report()}`,
      () => all(/peer changed: 0 instances/),
      30_000,
    );
    for (const [name, r] of running) {
      assert.equal(await r.exit, 0, `${name} exited cleanly:\n${r.out}${r.err}`);
      assert.match(r.out, /deregistered \S+-1/);
    }
    const left = (await http('GET', `${agent}/v1/agent/services`)).body as Record<string, unknown>;
    assert.deepEqual(Object.keys(left), [], 'every example deregistered itself');
  });
});
