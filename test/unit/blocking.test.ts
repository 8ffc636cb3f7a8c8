import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  MAX_WAIT_MS,
  DEFAULT_WAIT_MS,
  parseBlocking,
  parseDurationMs,
  parseFlag,
} from '../../agent/http/blocking.js';
import { MeshregError } from '../../proto/errors.js';

function q(text: string): URLSearchParams {
  return new URLSearchParams(text);
}

function assertInvalid(fn: () => unknown, field: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MeshregError);
    assert.equal(err.code, 'invalid_argument');
    assert.equal(err.httpStatus, 400);
    assert.deepEqual(
      err.fields.map((f) => f.path),
      [field],
    );
    return true;
  });
}

test('blocking - Go-style durations parse to milliseconds', () => {
  const cases: [string, number | undefined][] = [
    ['10s', 10_000],
    ['1m30s', 90_000],
    ['250ms', 250],
    ['0', 0],
    ['0s', 0],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    ['2m0.5s', 120_500],
    ['500us', 0.5],
    ['', undefined],
    ['10', undefined],
    ['s', undefined],
    ['-1s', undefined],
    ['10x', undefined],
    ['10s ', undefined],
    ['1d', undefined],
  ];
  for (const [text, ms] of cases) assert.equal(parseDurationMs(text), ms, JSON.stringify(text));
});

test('blocking - index and wait are read, and the wait gets at most 1/16 of jitter', () => {
  assert.deepEqual(
    parseBlocking(q('index=5&wait=10s'), () => 0),
    { index: 5, waitMs: 10_000 },
  );
  const max = parseBlocking(q('index=5&wait=10s'), () => 0.999_999);
  assert.ok(max.waitMs > 10_000 && max.waitMs <= 10_000 + 10_000 / 16, String(max.waitMs));
  assert.deepEqual(
    parseBlocking(q('wait=0'), () => 0.5),
    { index: undefined, waitMs: 0 },
  );
  assert.deepEqual(
    parseBlocking(q(''), () => 0),
    { index: undefined, waitMs: DEFAULT_WAIT_MS },
  );
  assert.deepEqual(
    parseBlocking(q('index=&wait='), () => 0),
    { index: undefined, waitMs: DEFAULT_WAIT_MS },
  );
});

test('blocking - the wait is capped at 10 minutes before jitter', () => {
  assert.equal(MAX_WAIT_MS, 600_000);
  assert.equal(parseBlocking(q('wait=1h'), () => 0).waitMs, MAX_WAIT_MS);
  assert.equal(parseBlocking(q('wait=1h'), () => 1).waitMs, MAX_WAIT_MS + MAX_WAIT_MS / 16);
  assert.equal(parseBlocking(q('wait=10m'), () => 0).waitMs, MAX_WAIT_MS);
});

test('blocking - an invalid index or wait is a 400 naming the field', () => {
  assertInvalid(() => parseBlocking(q('wait=soon')), 'wait');
  assertInvalid(() => parseBlocking(q('wait=10')), 'wait');
  assertInvalid(() => parseBlocking(q('index=-1')), 'index');
  assertInvalid(() => parseBlocking(q('index=1.5')), 'index');
  assertInvalid(() => parseBlocking(q('index=abc')), 'index');
  assertInvalid(() => parseBlocking(q('index=99999999999999999999')), 'index');
});

test('blocking - boolean flags: present means true, and only true/false words are accepted', () => {
  assert.equal(parseFlag(q('passing'), 'passing'), true);
  assert.equal(parseFlag(q('passing='), 'passing'), true);
  assert.equal(parseFlag(q(''), 'passing'), false);
  for (const v of ['1', 't', 'true', 'TRUE']) assert.equal(parseFlag(q(`passing=${v}`), 'passing'), true, v);
  for (const v of ['0', 'f', 'false', 'False'])
    assert.equal(parseFlag(q(`passing=${v}`), 'passing'), false, v);
  assertInvalid(() => parseFlag(q('passing=maybe'), 'passing'), 'passing');
});
