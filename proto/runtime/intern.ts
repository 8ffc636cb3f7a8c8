/**
 * Bounded intern tables: one shared copy of the strings and small values that repeat across
 * instances (node names, addresses, service names, tags, meta), so that a million stored instances
 * do not hold a million copies of the same few hundred strings.
 *
 * The tables are fed by what agents send, so they must stay bounded whatever arrives: each is two
 * generations of at most `maxEntries` entries and `maxBytes` of keys. When the current generation
 * is full it becomes the previous one and the one before is dropped; a value found in the previous
 * generation is carried over. Values in use keep their canonical copy across rotations (the stored
 * objects hold it), values no longer seen fall out after two rotations. Hostile input can only make
 * interning less effective, never make a table larger than `2 × maxEntries`.
 */
import { registrationId, type CheckState, type Instance, type Weights } from '../instance.js';

export interface InternLimits {
  /** Entries per generation (two generations are kept). */
  readonly maxEntries: number;
  /** Key bytes (UTF-16 code units × 2) per generation. */
  readonly maxBytes: number;
  /** Longer keys are never interned (they are unlikely to repeat, and would fill the table). */
  readonly maxKeyLength: number;
}

/** Limits of the process-wide pool: at most ~16 MiB of keys, shared by every server role. */
export const DEFAULT_INTERN_LIMITS: InternLimits = Object.freeze({
  maxEntries: 65_536,
  maxBytes: 8 * 1024 * 1024,
  maxKeyLength: 512,
});

/** A bounded, two-generation table of canonical values by string key. */
export class InternTable<V> {
  readonly #limits: InternLimits;
  #current = new Map<string, V>();
  #previous = new Map<string, V>();
  #bytes = 0;

  constructor(limits: InternLimits) {
    this.#limits = limits;
  }

  /** Entries held over both generations (never more than `2 × maxEntries`). */
  get size(): number {
    return this.#current.size + this.#previous.size;
  }

  /** Key bytes of the current generation (never more than `maxBytes`). */
  get bytes(): number {
    return this.#bytes;
  }

  /** The canonical value stored for `key`, if any (found in the previous generation, it is kept). */
  lookup(key: string): V | undefined {
    const hit = this.#current.get(key);
    if (hit !== undefined) return hit;
    const old = this.#previous.get(key);
    return old === undefined ? undefined : this.canonical(key, old);
  }

  /** Makes `value` the canonical value of `key`, replacing any other (bounded like {@link canonical}). */
  remember(key: string, value: V): void {
    if (key.length > this.#limits.maxKeyLength) return;
    if (this.#current.delete(key)) this.#bytes -= key.length * 2;
    this.#previous.delete(key);
    this.canonical(key, value);
  }

  /**
   * The canonical value for `key`: the one stored earlier, or `value`, which becomes canonical.
   * A key over `maxKeyLength` is not stored and `value` is returned as it is.
   */
  canonical(key: string, value: V): V {
    const hit = this.#current.get(key);
    if (hit !== undefined) return hit;
    if (key.length > this.#limits.maxKeyLength) return value;
    const kept = this.#previous.get(key) ?? value;
    const bytes = key.length * 2;
    if (this.#current.size >= this.#limits.maxEntries || this.#bytes + bytes > this.#limits.maxBytes) {
      this.#previous = this.#current;
      this.#current = new Map();
      this.#bytes = 0;
    }
    this.#current.set(key, kept);
    this.#bytes += bytes;
    return kept;
  }
}

const EMPTY: readonly never[] = Object.freeze([]);
const NO_META: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Compacts decoded instances: their repeated strings interned, and tags, meta, weights and checks
 * that are equal shared as one frozen value. The result equals the input field by field.
 */
export class InstancePool {
  readonly #strings: InternTable<string>;
  readonly #values: InternTable<object>;
  /**
   * Instances compacted lately, by registration ID: an equal one decoded again (a session and a
   * data server in one process each decode what the session writes) is the same object.
   */
  readonly #instances: InternTable<Instance>;

  constructor(limits: InternLimits = DEFAULT_INTERN_LIMITS) {
    this.#strings = new InternTable(limits);
    this.#values = new InternTable(limits);
    this.#instances = new InternTable(limits);
  }

  /** Entries held by the string and value tables (bounded by the limits). */
  get size(): { strings: number; values: number; stringBytes: number; valueBytes: number } {
    return {
      strings: this.#strings.size,
      values: this.#values.size,
      stringBytes: this.#strings.bytes,
      valueBytes: this.#values.bytes,
    };
  }

  /** The canonical copy of `s`. */
  string(s: string): string {
    return s.length === 0 ? '' : this.#strings.canonical(s, s);
  }

  /** A compact instance equal to `i`: one compacted lately if equal, else a new compact copy. */
  instance(i: Instance): Instance {
    const key = registrationId(i);
    const seen = this.#instances.lookup(key);
    if (seen !== undefined && sameInstance(seen, i)) return seen;
    const s = (x: string): string => this.string(x);
    const compact: Instance = {
      id: s(i.id),
      service: s(i.service),
      nodeId: s(i.nodeId),
      node: s(i.node),
      nodeAddress: s(i.nodeAddress),
      address: s(i.address),
      port: i.port,
      tags: this.#tags(i.tags),
      meta: this.#meta(i.meta),
      weights: this.#weights(i.weights),
      health: i.health,
      checks: this.#checks(i.checks),
      zone: s(i.zone),
      region: s(i.region),
      ...(i.draining === true ? { draining: true as const } : {}),
    };
    // A newer instance under the same registration replaces the one remembered.
    this.#instances.remember(key, compact);
    return compact;
  }

  #tags(tags: readonly string[]): readonly string[] {
    if (tags.length === 0) return EMPTY;
    // The `t` prefix keeps tag lists apart from the other values sharing the table.
    return this.#shared(`t${JSON.stringify(tags)}`, () => tags.map((t) => this.string(t)));
  }

  #meta(meta: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
    const entries = Object.entries(meta);
    if (entries.length === 0) return NO_META;
    return this.#shared(`m${JSON.stringify(entries)}`, () =>
      // fromEntries: a `__proto__` key stays an own property.
      Object.fromEntries(entries.map(([k, v]) => [this.string(k), this.string(v)])),
    );
  }

  #weights(w: Weights): Weights {
    return this.#shared(`w${String(w.passing)}/${String(w.warning)}`, () => ({ ...w }));
  }

  #checks(checks: readonly CheckState[]): readonly CheckState[] {
    if (checks.length === 0) return EMPTY;
    // Outputs change with every run of a check: the strings around them are interned, not the list.
    return checks.map((c) => ({
      id: this.string(c.id),
      name: this.string(c.name),
      status: c.status,
      output: c.output,
      type: this.string(c.type),
    }));
  }

  /** The shared frozen value for `key`, made by `make` the first time. */
  #shared<V extends object>(key: string, make: () => V): V {
    const held = this.#values.lookup(key);
    if (held !== undefined) return held as V;
    return this.#values.canonical(key, Object.freeze(make())) as V;
  }
}

/** Field-by-field equality of two instances (arrays and maps by content). */
export function sameInstance(a: Instance, b: Instance): boolean {
  if (a === b) return true;
  if (a.id !== b.id || a.service !== b.service || a.nodeId !== b.nodeId || a.node !== b.node) return false;
  if (a.nodeAddress !== b.nodeAddress || a.address !== b.address || a.port !== b.port) return false;
  if (a.health !== b.health || a.zone !== b.zone || a.region !== b.region) return false;
  if (a.draining !== b.draining || a.weights.passing !== b.weights.passing) return false;
  if (a.weights.warning !== b.weights.warning || !sameList(a.tags, b.tags)) return false;
  if (!sameList(Object.entries(a.meta).flat(), Object.entries(b.meta).flat())) return false;
  if (a.checks.length !== b.checks.length) return false;
  return a.checks.every((c, n) => {
    const d = b.checks[n];
    return (
      d !== undefined &&
      c.id === d.id &&
      c.name === d.name &&
      c.status === d.status &&
      c.output === d.output &&
      c.type === d.type
    );
  });
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((x, n) => x === b[n]));
}

let shared: InstancePool | undefined;

/**
 * The process-wide pool with the default limits: the roles of one process share their strings
 * (a session and a data server in one process hold the same names once).
 */
export function sharedInstancePool(): InstancePool {
  shared ??= new InstancePool();
  return shared;
}
