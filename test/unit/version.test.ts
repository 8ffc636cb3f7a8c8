import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VersionClock, versionTimeMs } from '../../proto/version.js';

function strictlyGrowing(values: readonly number[]): void {
  for (let i = 1; i < values.length; i++) {
    assert.ok((values[i] ?? 0) > (values[i - 1] ?? 0), `${values[i]} after ${values[i - 1]}`);
  }
}

test('version - a frozen clock still gives growing versions', () => {
  const clock = new VersionClock(() => Date.UTC(2025, 0, 1));
  const vs = Array.from({ length: 5000 }, () => clock.next());
  strictlyGrowing(vs);
  assert.equal((vs[4999] ?? 0) - (vs[0] ?? 0), 4999);
});

test('version - a clock that goes backwards never makes a version go backwards', () => {
  const times = [Date.UTC(2025, 0, 1), Date.UTC(2024, 0, 1), Date.UTC(2025, 0, 1) - 1, Date.UTC(2026, 0, 1)];
  let i = 0;
  const clock = new VersionClock(() => times[Math.min(i++, times.length - 1)] ?? 0);
  const vs = [clock.next(), clock.next(), clock.next(), clock.next()];
  strictlyGrowing(vs);
  // Once the clock passes the old time again, versions follow time once more.
  assert.equal(versionTimeMs(vs[3] ?? 0), Date.UTC(2026, 0, 1));
});

test('version - next(floor) is above the floor, even far above the clock', () => {
  const clock = new VersionClock(() => Date.UTC(2025, 0, 1));
  const first = clock.next();
  const floor = first + 1_000_000;
  const v = clock.next(floor);
  assert.equal(v, floor + 1);
  assert.equal(clock.next(), floor + 2, 'later versions stay above the floor too');
  assert.equal(clock.next(5), floor + 3, 'a low floor changes nothing');
});

test('version - versions carry their wall-clock time and stay safe integers', () => {
  const now = Date.UTC(2030, 5, 1, 12, 0, 0, 123);
  const clock = new VersionClock(() => now);
  const v = clock.next();
  assert.ok(Number.isSafeInteger(v));
  assert.equal(versionTimeMs(v), now);
  assert.ok(Number.isSafeInteger(new VersionClock(() => Date.UTC(2087, 0, 1)).next()));
});
