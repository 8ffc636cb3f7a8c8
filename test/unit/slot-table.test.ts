import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c, isPowerOfTwo, slotOf } from '../../proto/slot-table.js';

test('slot table - crc32c matches the standard check value', () => {
  assert.equal(crc32c('123456789'), 0xe3069283);
  assert.equal(crc32c(''), 0);
  // RFC 3720 §B.4 test vectors: 32 zero bytes, and the bytes 0x00..0x1F ascending.
  assert.equal(crc32c('\0'.repeat(32)), 0x8a9136aa);
  assert.equal(crc32c(String.fromCharCode(...Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e);
});

test('slot table - slotOf is stable and within range for every power-of-two count', () => {
  const keys = Array.from({ length: 500 }, (_, i) => `service-${i}`);
  for (const count of [1, 2, 16, 256, 4096, 2 ** 31, 2 ** 32]) {
    const seen = new Set<number>();
    for (const k of keys) {
      const s = slotOf(k, count);
      assert.ok(Number.isInteger(s) && s >= 0 && s < count, `${k} -> ${s} of ${count}`);
      assert.equal(slotOf(k, count), s);
      assert.equal(s, crc32c(k) % count);
      seen.add(s);
    }
    // 500 keys spread over the slots rather than piling into a few.
    assert.ok(seen.size >= Math.min(count, 200), `${seen.size} slots used of ${count}`);
  }
});

test('slot table - isPowerOfTwo accepts only positive powers of two', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 0, -2, 256, 255, 1.5, 2 ** 40, 3 * 2 ** 32, 2 ** 32 + 1, 2 ** 53, Number.NaN].map(
      isPowerOfTwo,
    ),
    [true, true, false, true, false, false, true, false, false, true, false, false, false, false],
  );
});
