/**
 * fast-check building blocks shared by the property tests: valid wire values, and mutations of them
 * (one field somewhere replaced by an arbitrary JSON value), which reach deeper into a decoder than
 * purely random input does.
 */
import fc from 'fast-check';
import type { Instance } from '../../proto/instance.js';

/** Strings as hostile input carries them: any UTF-16 code units, lone surrogates included. */
export const anyText = fc.string({ unit: 'binary', maxLength: 40 });

/** Well-formed text within a length: what a decoder must accept where no pattern applies. */
export const text = (maxLength: number, minLength = 0): fc.Arbitrary<string> =>
  fc.string({ unit: 'grapheme', minLength, maxLength }).filter((s) => s.length <= maxLength);

export const serviceName = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$/);

/** A JSON value of any shape, as `JSON.parse` can produce. */
export const anyJson = fc.jsonValue({ maxDepth: 4 });

const health = fc.constantFrom<'passing' | 'warning' | 'critical'>('passing', 'warning', 'critical');

export const instance: fc.Arbitrary<Instance> = fc
  .record({
    id: text(64, 1),
    service: serviceName,
    nodeId: text(32, 1),
    node: text(32, 1),
    nodeAddress: text(40),
    address: text(40),
    port: fc.integer({ min: 0, max: 65535 }),
    tags: fc.array(text(20), { maxLength: 5 }),
    meta: fc.dictionary(text(16, 1), text(20), { maxKeys: 5 }),
    weights: fc.record({
      passing: fc.integer({ min: 0, max: 65535 }),
      warning: fc.integer({ min: 0, max: 65535 }),
    }),
    health,
    checks: fc.array(
      fc.record({
        id: text(20, 1),
        name: text(20),
        status: health,
        output: text(40),
        type: fc.constantFrom('http', 'tcp', 'ttl', ''),
      }),
      { maxLength: 3 },
    ),
    zone: text(16),
    region: text(16),
    draining: fc.boolean(),
  })
  .map(({ draining, ...rest }) => (draining ? { ...rest, draining: true as const } : rest));

/**
 * `value` with the node at a random path replaced by `replacement` (or, for the root, replaced
 * outright). The path is a list of choices taken modulo each level's width, so every path can occur.
 */
export function mutate(value: unknown, path: readonly number[], replacement: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(value)) as unknown;
  if (path.length === 0) return replacement;
  let node: unknown = copy;
  for (let depth = 0; depth < path.length; depth++) {
    if (typeof node !== 'object' || node === null) break;
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const key = keys[(path[depth] ?? 0) % keys.length] ?? '';
    const last = depth === path.length - 1;
    const child = (node as Record<string, unknown>)[key];
    if (last || typeof child !== 'object' || child === null) {
      Object.defineProperty(node, key, {
        value: replacement,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      break;
    }
    node = child;
  }
  return copy;
}

/** A mutation of a value drawn from `valid`. */
export function mutated(valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc
    .tuple(valid, fc.array(fc.nat(), { maxLength: 5 }), fc.oneof(anyJson, anyText, fc.constant(undefined)))
    .map(([v, path, replacement]) => mutate(v, path, replacement));
}
