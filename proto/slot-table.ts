/**
 * The slot table: how service keys are sharded over data servers.
 *
 * A key maps to a slot by CRC-32C of its UTF-8 bytes masked to a power-of-two slot count (the scheme
 * SOFARegistry uses), so every process computes the same slot without asking anyone. Each slot has one
 * leader and zero or more followers; the table carries an epoch that only grows.
 */
import { Issues, at, readArray, readInt, readObject, readString } from './validate.js';

/** Default number of slots; must be a power of two. */
export const DEFAULT_SLOT_COUNT = 256;

export interface Slot {
  readonly id: number;
  /** Data server ID that leads the slot. */
  readonly leader: string;
  /** Bumped every time the leader changes, so a new leader can be told apart from an old one. */
  readonly leaderEpoch: number;
  readonly followers: readonly string[];
}

export interface SlotTable {
  /** Grows with every change of the table. */
  readonly epoch: number;
  readonly slotCount: number;
  readonly slots: readonly Slot[];
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    // Castagnoli polynomial, reflected (RFC 3720 §B.4).
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli) of a string's UTF-8 bytes. */
export function crc32c(text: string): number {
  const bytes = Buffer.from(text, 'utf8');
  let crc = 0xffffffff;
  for (const b of bytes) crc = (CRC32C_TABLE[(crc ^ b) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** True for 1, 2, 4, … up to 2^52. Arithmetic, not bitwise: `&` would wrap numbers above 2^31. */
export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/**
 * The slot of a service key, in `0..slotCount-1`. For a power-of-two count the remainder equals
 * masking the low bits; it is written as a remainder because `&` works on signed 32-bit integers and
 * would give negative slots for counts above 2^31.
 */
export function slotOf(key: string, slotCount: number): number {
  return crc32c(key) % slotCount;
}

/** Reads a slot table into `issues` (used by the meta link's decoder). */
export function decodeSlotTableInto(issues: Issues, o: Record<string, unknown>): SlotTable | undefined {
  const epoch = readInt(issues, o['epoch'], 'epoch', { required: true });
  const slotCount = readInt(issues, o['slotCount'], 'slotCount', { required: true, min: 1, max: 65536 });
  if (slotCount !== undefined && !isPowerOfTwo(slotCount)) issues.add('slotCount', 'must be a power of two');
  const slots = readArray(
    issues,
    o['slots'],
    'slots',
    (s, p) => {
      const so = readObject(issues, s, p);
      const id = readInt(issues, so?.['id'], at(p, 'id'), { required: true });
      const leader = readString(issues, so?.['leader'], at(p, 'leader'), { maxLength: 256 }) ?? '';
      const leaderEpoch = readInt(issues, so?.['leaderEpoch'], at(p, 'leaderEpoch'), { required: true });
      const followers =
        readArray(
          issues,
          so?.['followers'],
          at(p, 'followers'),
          (f, fp) => readString(issues, f, fp, { required: true, maxLength: 256 }),
          {
            maxItems: 64,
          },
        ) ?? [];
      if (id === undefined || leaderEpoch === undefined) return undefined;
      return { id, leader, leaderEpoch, followers };
    },
    { required: true, maxItems: 65536 },
  );
  if (epoch === undefined || slotCount === undefined || slots === undefined) return undefined;
  if (slots.length !== slotCount) return issues.add('slots', `must have slotCount (${slotCount}) entries`);
  return { epoch, slotCount, slots };
}
