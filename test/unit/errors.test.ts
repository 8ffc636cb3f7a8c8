import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  ERROR_TABLE,
  FATAL_CLOSE_CODES,
  MeshregError,
  closeReason,
  type ErrorCode,
} from '../../proto/errors.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function checkReason(text: string): string {
  const out = closeReason(text);
  assert.ok(Buffer.byteLength(out, 'utf8') <= 123, `${Buffer.byteLength(out)} bytes`);
  assert.ok(!out.includes('\uFFFD'), 'no character was split');
  return out;
}

test('errors - closeReason keeps a reason of at most 123 bytes as it is', () => {
  assert.equal(checkReason('invalid_frame: bad'), 'invalid_frame: bad');
  const exact = 'x'.repeat(123);
  assert.equal(checkReason(exact), exact);
  const exactMultiByte = 'é'.repeat(61) + 'x';
  assert.equal(Buffer.byteLength(exactMultiByte), 123);
  assert.equal(checkReason(exactMultiByte), exactMultiByte);
});

test('errors - closeReason cuts a long ASCII reason to 120 bytes plus an ellipsis', () => {
  const out = checkReason('y'.repeat(124));
  assert.equal(out, 'y'.repeat(120) + '...');
  assert.equal(Buffer.byteLength(out), 123);
});

test('errors - closeReason never splits a multi-byte character', () => {
  // 'a' then two-byte characters: byte 120 is the second byte of a character.
  assert.equal(checkReason('a' + 'é'.repeat(70)), 'a' + 'é'.repeat(59) + '...');
  // Three- and four-byte characters at every alignment.
  for (let pad = 0; pad < 4; pad++) {
    for (const ch of ['€', '😀', '中']) {
      const text = 'p'.repeat(pad) + ch.repeat(60);
      const out = checkReason(text);
      assert.ok(out.endsWith('...'));
      const kept = out.slice(0, -3);
      assert.ok(text.startsWith(kept));
      // Nothing more could have been kept: the next character would pass 120 bytes.
      const nextChar = String.fromCodePoint(text.codePointAt(kept.length) ?? 0);
      assert.ok(Buffer.byteLength(kept + nextChar) > 120, `pad ${pad} ${ch}`);
    }
  }
});

test('errors - every code maps to its HTTP status and WebSocket close code', () => {
  const expected: Record<ErrorCode, [number, number]> = {
    invalid_argument: [400, 4000],
    invalid_frame: [400, 4000],
    unauthorized: [401, 4001],
    forbidden: [403, 4003],
    not_found: [404, 4000],
    method_not_allowed: [405, 4000],
    payload_too_large: [413, 1009],
    unsupported_protocol: [400, 4002],
    rate_limited: [429, 4004],
    handshake_timeout: [408, 4008],
    replaced: [409, 4009],
    ack_timeout: [504, 4010],
    liveness_timeout: [504, 4011],
    stale_epoch: [409, 4012],
    unavailable: [503, 1013],
    shutting_down: [503, 1001],
    internal: [500, 1011],
    request_timeout: [408, 4000],
    headers_too_large: [431, 4000],
    limit_exceeded: [429, 4013],
    slow_consumer: [503, 4014],
    wrong_datacenter: [409, 4015],
  };
  assert.deepEqual(
    Object.fromEntries(Object.entries(ERROR_TABLE).map(([k, v]) => [k, [v.http, v.ws]])),
    expected,
  );
  for (const code of Object.keys(expected) as ErrorCode[]) {
    const err = new MeshregError(code, 'm');
    assert.equal(err.httpStatus, expected[code][0]);
    assert.equal(err.closeCode, expected[code][1]);
  }
  assert.deepEqual([...FATAL_CLOSE_CODES].sort(), [4001, 4002, 4003, 4015]);
});

test('errors - the README error table agrees with the code table', async () => {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const rows = [...readme.matchAll(/^\| `([a-z_]+)`\s*\| (\d{3})\s*\| (\d{4}|—)\s*\|/gm)];
  const documented = new Set<string>();
  for (const [, code, http, ws] of rows) {
    const entry = ERROR_TABLE[code as ErrorCode] as (typeof ERROR_TABLE)[ErrorCode] | undefined;
    assert.ok(entry !== undefined, `README lists an unknown code ${String(code)}`);
    assert.equal(String(entry.http), http, `${String(code)} HTTP status`);
    if (ws !== '—') assert.equal(String(entry.ws), ws, `${String(code)} close code`);
    documented.add(String(code));
  }
  assert.deepEqual([...documented].sort(), Object.keys(ERROR_TABLE).sort());
});

test('errors - MeshregError carries code, cause and fields into its JSON body', () => {
  const cause = new Error('disk');
  const err = new MeshregError('invalid_argument', 'Invalid body', {
    cause,
    fields: [{ path: 'Port', message: 'must be an integer 0..65535' }],
  });
  assert.equal(err.name, 'MeshregError');
  assert.equal(err.cause, cause);
  assert.ok(err instanceof Error);
  assert.deepEqual(err.toJSON(), {
    error: {
      code: 'invalid_argument',
      message: 'Invalid body',
      fields: [{ path: 'Port', message: 'must be an integer 0..65535' }],
    },
  });
  assert.deepEqual(new MeshregError('internal', 'x').toJSON(), { error: { code: 'internal', message: 'x' } });
  assert.equal(new MeshregError('internal', 'x').cause, undefined);
});
