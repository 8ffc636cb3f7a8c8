/**
 * The graceful stop's building blocks: phases that log their duration and name what is pending,
 * budgets that leave a reserve, and the agent HTTP server's drain (stop accepting, end blocking
 * requests early with their current answer, close).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readHttpLimits } from '../../agent/config.js';
import { HttpServer } from '../../agent/http/http-server.js';
import { JsonRouter } from '../../proto/runtime/json-router.js';
import { createLogger } from '../../proto/runtime/log.js';
import { ShutdownPhases, readShutdownTimeoutMs, waitUntil } from '../../proto/runtime/shutdown.js';

function capture(): { lines: Record<string, unknown>[]; logger: ReturnType<typeof createLogger> } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', {}, (line) => {
    lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  return { lines, logger };
}

test('shutdown - a phase logs its duration and is pending while it runs', async () => {
  const { lines, logger } = capture();
  const phases = new ShutdownPhases(logger, 10_000);
  let release: () => void = () => undefined;
  const running = phases.run('slow step', () => new Promise<void>((r) => (release = r)));
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(
    phases.pending().map((p) => p.phase),
    ['slow step'],
  );
  assert.ok((phases.pending()[0]?.runningMs ?? 0) >= 15);
  release();
  await running;
  assert.deepEqual(phases.pending(), []);
  const done = lines.find((l) => l['msg'] === 'shutdown phase');
  assert.equal(done?.['phase'], 'slow step');
  assert.equal(typeof done?.['durationMs'], 'number');
  assert.equal(done?.['failed'], undefined);
});

test('shutdown - a failed phase is logged as failed and rethrows', async () => {
  const { lines, logger } = capture();
  const phases = new ShutdownPhases(logger, 10_000);
  await assert.rejects(
    phases.run('broken', () => Promise.reject(new Error('boom'))),
    /boom/,
  );
  assert.equal(lines.find((l) => l['phase'] === 'broken')?.['failed'], true);
});

test('shutdown - a budget never passes the deadline less the reserve, nor goes negative', () => {
  const phases = new ShutdownPhases(
    createLogger('error', {}, () => undefined),
    5_000,
  );
  assert.equal(phases.budgetMs(100, 1_000), 100);
  const budget = phases.budgetMs(Number.POSITIVE_INFINITY, 1_000);
  assert.ok(budget <= 4_000 && budget > 3_900, String(budget));
  assert.equal(phases.budgetMs(100, 10_000), 0);
});

test('shutdown - the timeout variable is bounded', () => {
  assert.equal(readShutdownTimeoutMs({}), 20_000);
  assert.equal(readShutdownTimeoutMs({ MESHREG_SHUTDOWN_TIMEOUT_MS: '1500' }), 1500);
  assert.throws(
    () => readShutdownTimeoutMs({ MESHREG_SHUTDOWN_TIMEOUT_MS: '0' }),
    /MESHREG_SHUTDOWN_TIMEOUT_MS/,
  );
});

test('shutdown - waitUntil is bounded and says whether the condition held', async () => {
  assert.equal(await waitUntil(() => false, 30, 5), false);
  let n = 0;
  assert.equal(await waitUntil(() => ++n > 3, 1_000, 1), true);
});

test('shutdown - the agent HTTP drain answers a blocking request now and stops accepting', async (t) => {
  const router = new JsonRouter();
  router.add('GET', '/block', async (req) => {
    // A blocking query: waits for a change or the end of its wait, whichever comes first.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 60_000);
      req.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return { status: 200, body: { answered: 'current' } };
  });
  const server = new HttpServer(router, {
    host: '127.0.0.1',
    port: 0,
    maxBodyBytes: 1024,
    logger: createLogger('error', {}, () => undefined),
    limits: readHttpLimits({}),
  });
  await server.listen();
  t.after(() => server.close().catch(() => undefined));
  const base = server.address;
  const blocked = fetch(`${base}/block`);
  await new Promise((r) => setTimeout(r, 50));
  const started = performance.now();
  const unanswered = await server.drain(5_000);
  assert.equal(unanswered, 0);
  assert.ok(performance.now() - started < 2_000);
  const res = await blocked;
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { answered: 'current' });
  await assert.rejects(fetch(`${base}/block`));
});
