/**
 * Nodes and instances drained by an operator: meta keeps the set (in memory: a restarted meta starts
 * with none) and sends it to every data server; a slot leader marks matching instances draining, with
 * a critical check, so discovery stops routing to them while they stay registered. The agent owns
 * the instance, so nothing is deregistered and restoring it is taking it out of the set.
 */
import type { ConsoleDrained, ConsoleInstanceDrain, ConsoleNodeDrain } from '../../proto/console.js';
import type { DrainedEvent } from '../../proto/console-link.js';
import type { CheckState, Instance } from '../../proto/instance.js';
import type { Decoded } from '../../proto/validate.js';
import { decodeObject, readBool, readString } from '../../proto/validate.js';

/** Entries of the drained set, at most. */
export const MAX_DRAINED = 10_000;

const NAME = {
  required: true,
  maxLength: 256,
  pattern: /^[^\s/]+$/,
  patternHint: 'must be a name without blanks or /',
};

/** Decodes `POST /admin/console/drain/node` (the reason is read by the audit wrapper). */
export const decodeNodeDrain = (raw: unknown): Decoded<Omit<ConsoleNodeDrain, 'reason'>> =>
  decodeObject(raw, (issues, o) => {
    const node = readString(issues, o['node'], 'node', NAME);
    const drained = readBool(issues, o['drained'], 'drained') ?? true;
    return node === undefined ? undefined : { node, drained };
  });

/** Decodes `POST /admin/console/drain/instance`. */
export const decodeInstanceDrain = (raw: unknown): Decoded<Omit<ConsoleInstanceDrain, 'reason'>> =>
  decodeObject(raw, (issues, o) => {
    const node = readString(issues, o['node'], 'node', NAME);
    const id = readString(issues, o['id'], 'id', { required: true, maxLength: 256 });
    const drained = readBool(issues, o['drained'], 'drained') ?? true;
    return node === undefined || id === undefined ? undefined : { node, id, drained };
  });

/** The set as meta holds it. */
export class DrainedSet {
  #state: DrainedEvent = { version: 0, nodes: [], instances: [] };
  readonly #onChange: (state: DrainedEvent) => void;

  constructor(onChange: (state: DrainedEvent) => void) {
    this.#onChange = onChange;
  }

  get state(): DrainedEvent {
    return this.#state;
  }

  /** Adds or removes a node (`id` undefined) or one of its instances; returns the new set. */
  set(node: string, id: string | undefined, drained: boolean): ConsoleDrained {
    const key = id === undefined ? node : `${node}/${id}`;
    const list = new Set(id === undefined ? this.#state.nodes : this.#state.instances);
    if (drained) list.add(key);
    else list.delete(key);
    if (list.size > MAX_DRAINED) throw new RangeError(`at most ${MAX_DRAINED} drained entries`);
    const sorted = [...list].sort();
    const version = Math.max(this.#state.version + 1, Date.now());
    this.#state = Object.freeze(
      id === undefined
        ? { ...this.#state, nodes: sorted, version }
        : { ...this.#state, instances: sorted, version },
    );
    this.#onChange(this.#state);
    return { nodes: this.#state.nodes, instances: this.#state.instances };
  }
}

/** Why `i` is drained by an operator: '' when it is not. */
export function drainedBy(d: ConsoleDrained, i: Pick<Instance, 'node' | 'id'>): '' | 'node' | 'instance' {
  if (d.instances.includes(`${i.node}/${i.id}`)) return 'instance';
  return d.nodes.includes(i.node) ? 'node' : '';
}

/** The check that takes a drained instance out of every passing list. */
export const DRAINED_CHECK: CheckState = Object.freeze({
  id: 'meshreg:drained',
  name: 'Drained by an operator',
  status: 'critical',
  output: 'drained by an operator (see the audit log); restore it from the console or the admin API',
  type: '',
});

/** A data server's view of the set: marks matching instances draining. */
export class DrainedMarks {
  #nodes = new Set<string>();
  #instances = new Set<string>();
  #version = 0;

  get empty(): boolean {
    return this.#nodes.size === 0 && this.#instances.size === 0;
  }

  /** Adopts a newer set; returns the nodes whose instances changed state (old and new entries). */
  apply(next: DrainedEvent): Set<string> | undefined {
    if (next.version <= this.#version) return undefined;
    const touched = new Set<string>();
    const nodeOf = (k: string): string => k.slice(0, k.indexOf('/'));
    const nextNodes = new Set(next.nodes);
    const nextInstances = new Set(next.instances);
    for (const n of symmetricDiff(this.#nodes, nextNodes)) touched.add(n);
    for (const k of symmetricDiff(this.#instances, nextInstances)) touched.add(nodeOf(k));
    this.#nodes = nextNodes;
    this.#instances = nextInstances;
    this.#version = next.version;
    return touched;
  }

  /** `instances` with the drained ones marked (the same array when none is). */
  mark(instances: readonly Instance[]): readonly Instance[] {
    if (this.empty) return instances;
    let out: Instance[] | undefined;
    instances.forEach((i, n) => {
      if (!this.#nodes.has(i.node) && !this.#instances.has(`${i.node}/${i.id}`)) return;
      out ??= [...instances];
      out[n] = { ...i, draining: true, health: 'critical', checks: [...i.checks, DRAINED_CHECK] };
    });
    return out ?? instances;
  }
}

function symmetricDiff(a: ReadonlySet<string>, b: ReadonlySet<string>): string[] {
  return [...[...a].filter((x) => !b.has(x)), ...[...b].filter((x) => !a.has(x))];
}
