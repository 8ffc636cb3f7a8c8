/**
 * What the session keeps of one subscribed service to push it: the latest datum, encoded once per
 * instance, and the steps of its recent past (what each version added, changed and removed), so a
 * protocol-2 subscriber that holds an older version is sent only what changed since (a `delta`).
 *
 * Only complete datums enter the history: a delta is applied by the agent as "its list at `base`
 * plus and minus the changes", which is right only when both ends are whole lists. An incomplete
 * datum (the data layer rebuilding after a failure) is kept as the latest whole frame and nothing
 * else; the next complete one is compared with the last complete one.
 *
 * Every frame is encoded once per version (the whole datum) or once per (base → version) and the
 * same bytes are written to every subscriber that needs them. Memory: the latest complete list as
 * one JSON string per instance, at most {@link MAX_STEPS} steps, and the frames of the latest version;
 * {@link PushHistory.bytes} estimates it.
 */
import type { Delta, Push } from '../../proto/agent-link.js';
import type { DatumView } from '../../proto/cluster-records.js';
import { registrationId } from '../../proto/instance.js';
import type { PushFrame } from './push-subscriptions.js';

/** How many versions back a delta can start from; an older base gets the whole datum. */
export const MAX_STEPS = 8;
/** Most delta frames (distinct bases) kept for the latest version. */
const MAX_DELTA_FRAMES = MAX_STEPS;

/** The changes from `base` to `version`: instances put (ID → JSON) and IDs removed. */
interface Step {
  readonly base: number;
  readonly version: number;
  readonly upserts: ReadonlyMap<string, string>;
  readonly removed: ReadonlySet<string>;
  readonly bytes: number;
}

/** The datum of one key as last fetched, with the recent past needed to push deltas from it. */
export class PushHistory {
  readonly #key: string;
  /** The latest version fetched (complete or not). */
  #version = -1;
  #complete = false;
  /** The latest complete list: registration ID → the instance's JSON. */
  #byId = new Map<string, string>();
  /** Version of {@link #byId}; -1 before the first complete datum. */
  #completeVersion = -1;
  /** Bytes of the instances' JSON in {@link #byId}. */
  #listBytes = 0;
  readonly #steps: Step[] = [];
  /** The whole frame of the latest version, encoded on first use. */
  #full: PushFrame | undefined;
  /** The instances of the latest version when it is incomplete (not in {@link #byId}). */
  #incomplete: readonly string[] | undefined;
  readonly #deltas = new Map<number, PushFrame | null>();

  constructor(key: string) {
    this.#key = key;
  }

  get version(): number {
    return this.#version;
  }

  get complete(): boolean {
    return this.#complete;
  }

  /** Estimated bytes held: the latest list, the steps and the encoded frames. */
  get bytes(): number {
    let n = this.#listBytes * 2 + this.#byId.size * 64;
    for (const s of this.#steps) n += s.bytes * 2;
    if (this.#full !== undefined) n += this.#full.data.length;
    for (const f of this.#deltas.values()) n += f?.data.length ?? 0;
    return n;
  }

  /** Takes a datum just fetched; an older or equal version than the one held changes nothing. */
  update(d: DatumView): void {
    if (d.version <= this.#version) return;
    this.#version = d.version;
    this.#complete = d.complete;
    this.#full = undefined;
    this.#deltas.clear();
    if (!d.complete) {
      this.#incomplete = d.instances.map((i) => JSON.stringify(i));
      return;
    }
    this.#incomplete = undefined;
    const next = new Map<string, string>();
    const upserts = new Map<string, string>();
    let listBytes = 0;
    let stepBytes = 0;
    for (const i of d.instances) {
      const id = registrationId(i);
      const json = JSON.stringify(i);
      const old = this.#byId.get(id);
      // Equal JSON is kept as the old string, so unchanged instances share one copy across versions.
      next.set(id, old === json ? old : json);
      listBytes += json.length;
      if (old !== json) {
        upserts.set(id, json);
        stepBytes += json.length;
      }
    }
    const removed = new Set<string>();
    for (const id of this.#byId.keys()) {
      if (next.has(id)) continue;
      removed.add(id);
      stepBytes += id.length;
    }
    if (this.#completeVersion >= 0) {
      this.#steps.push({
        base: this.#completeVersion,
        version: d.version,
        upserts,
        removed,
        bytes: stepBytes,
      });
      if (this.#steps.length > MAX_STEPS) this.#steps.shift();
    }
    this.#byId = next;
    this.#completeVersion = d.version;
    this.#listBytes = listBytes;
  }

  /** The whole datum of the latest version, as a v1 `push` frame. */
  full(): PushFrame {
    this.#full ??= this.#encodeFull();
    return this.#full;
  }

  /**
   * The `delta` frame from `base` to the latest version, encoded once per base; undefined when the
   * latest version is incomplete, `base` is not in the recent past, or the delta would not be
   * smaller than the whole datum (the caller then sends {@link full}).
   */
  delta(base: number): PushFrame | undefined {
    if (!this.#complete || base >= this.#version) return undefined;
    let frame = this.#deltas.get(base);
    if (frame === undefined) {
      frame = this.#encodeDelta(base) ?? null;
      if (this.#deltas.size >= MAX_DELTA_FRAMES) this.#deltas.clear();
      this.#deltas.set(base, frame);
    }
    return frame ?? undefined;
  }

  #encodeFull(): PushFrame {
    const list = this.#incomplete ?? [...this.#byId.values()];
    // The same bytes as JSON.stringify of a Push: its fields in order, the instances as encoded.
    const head: Omit<Push, 'instances'> = {
      type: 'push',
      service: this.#key,
      version: this.#version,
      complete: this.#complete,
    };
    const text = `${JSON.stringify(head).slice(0, -1)},"instances":[${list.join(',')}]}`;
    return { version: this.#version, data: Buffer.from(text) };
  }

  #encodeDelta(base: number): PushFrame | undefined {
    const first = this.#steps.findIndex((s) => s.base === base);
    if (first < 0) return undefined;
    const upserts = new Map<string, string>();
    const removed = new Set<string>();
    for (const step of this.#steps.slice(first)) {
      for (const [id, json] of step.upserts) {
        upserts.set(id, json);
        removed.delete(id);
      }
      for (const id of step.removed) {
        upserts.delete(id);
        removed.add(id);
      }
    }
    let bytes = 0;
    for (const json of upserts.values()) bytes += json.length;
    for (const id of removed) bytes += id.length + 3;
    if (bytes >= this.#listBytes) return undefined;
    const head: Omit<Delta, 'upserts' | 'removed'> = {
      type: 'delta',
      service: this.#key,
      base,
      version: this.#version,
      complete: true,
    };
    const text =
      `${JSON.stringify(head).slice(0, -1)},"upserts":[${[...upserts.values()].join(',')}],` +
      `"removed":${JSON.stringify([...removed])}}`;
    return { version: this.#version, data: Buffer.from(text) };
  }
}
