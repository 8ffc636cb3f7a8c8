import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import fc from 'fast-check';
import { LoopMonitor, liveTimeout } from '../../proto/runtime/loop-monitor.js';

function manual(): { monitor: LoopMonitor; advance: (ms: number) => void } {
  let t = 1_000_000;
  const monitor = new LoopMonitor({ sampleMs: 100, toleranceMs: 50, now: () => t });
  return {
    monitor,
    advance: (ms) => {
      t += ms;
    },
  };
}

test('loop monitor - live time follows wall time while the loop keeps up', () => {
  const { monitor, advance } = manual();
  const start = monitor.liveNow();
  for (let i = 0; i < 10; i++) {
    advance(100);
    monitor.sample();
  }
  assert.equal(monitor.liveNow() - start, 1000);
  assert.equal(monitor.delay().stalledTotalMs, 0);
  assert.equal(monitor.stalledRecently(10_000), false);
});

test('loop monitor - a stall does not advance live time beyond the interval and tolerance', () => {
  const { monitor, advance } = manual();
  const start = monitor.liveNow();
  advance(5000); // paused for 5 s
  // Before the sampler has run, the stall in progress already counts.
  assert.equal(monitor.liveNow() - start, 150);
  assert.equal(monitor.stalledRecently(1), true);
  monitor.sample();
  assert.equal(monitor.liveNow() - start, 150);
  assert.equal(monitor.delay().longestStallMs, 4850);
  advance(100);
  monitor.sample();
  assert.equal(monitor.liveNow() - start, 250);
  assert.equal(monitor.stalledRecently(50), false);
  assert.equal(monitor.stalledRecently(500), true);
});

test('loop monitor - live time never goes backwards and never runs ahead of wall time', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ gap: fc.integer({ min: 0, max: 20_000 }), sample: fc.boolean() }), {
        maxLength: 60,
      }),
      (steps) => {
        const { monitor, advance } = manual();
        const live0 = monitor.liveNow();
        let wall = 0;
        let last = live0;
        for (const s of steps) {
          advance(s.gap);
          wall += s.gap;
          if (s.sample) monitor.sample();
          const now = monitor.liveNow();
          assert.ok(now >= last, `live time went back: ${last} -> ${now}`);
          assert.ok(now - live0 <= wall, 'live time ran ahead of wall time');
          last = now;
        }
      },
    ),
  );
});

test('loop monitor - a live timeout waits out a stall of the loop it runs on', async () => {
  const monitor = new LoopMonitor({ sampleMs: 20, toleranceMs: 20 });
  monitor.start();
  const keepAlive = setInterval(() => undefined, 1000); // the monitor's own timers are unref'd
  try {
    const started = Date.now();
    const fired = new Promise<number>((resolve) => {
      liveTimeout(() => resolve(Date.now()), 300, monitor);
    });
    // Block the loop for 600 ms: wall time passes, live time does not.
    setTimeout(() => {
      spawnSync(process.execPath, ['-e', 'setTimeout(() => {}, 600)']);
    }, 10);
    const at = await fired;
    assert.ok(
      at - started >= 600 + 200,
      `fired ${at - started} ms after the start, during or right after the stall`,
    );
    assert.ok(monitor.delay().longestStallMs >= 400);
  } finally {
    clearInterval(keepAlive);
    monitor.stop();
  }
});

test('loop monitor - a live timeout can be cancelled', async () => {
  const monitor = new LoopMonitor({ sampleMs: 20, toleranceMs: 20 });
  let fired = false;
  const cancel = liveTimeout(
    () => {
      fired = true;
    },
    30,
    monitor,
  );
  cancel();
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(fired, false);
});
