/**
 * The host's own registrations: the agent is their source of truth (Consul's anti-entropy model).
 *
 * Each record carries a version that grows with every change, and an in-sync flag that only the
 * session's confirmation of that version sets. A deregistration leaves a tombstone until the session
 * confirms it, so a removal made while offline still reaches the registry.
 */
import type { CheckState, Health, Instance, Weights } from '../../proto/instance.js';
import { decodeInstance, worstHealth } from '../../proto/instance.js';
import {
  Issues,
  describe,
  isRecord,
  readArray,
  readBool,
  readInt,
  readString,
  readStringMap,
  setOwn,
} from '../../proto/validate.js';
import type { VersionClock } from '../../proto/version.js';

/** A service as registered through the HTTP API or a definition file. */
export interface ServiceDefinition {
  readonly id: string;
  readonly name: string;
  readonly tags: readonly string[];
  readonly address: string;
  readonly port: number;
  readonly meta: Readonly<Record<string, string>>;
  readonly weights: Weights;
  readonly enableTagOverride: boolean;
}

export interface LocalRecord {
  readonly def: ServiceDefinition;
  readonly version: number;
  readonly synced: boolean;
  readonly checks: readonly CheckState[];
  /** The service's check definitions as sent (Consul JSON), persisted so they run again after a restart. */
  readonly checkDefinitions: readonly Readonly<Record<string, unknown>>[];
  /** Deregistered, and published as draining until the drain period ends. */
  readonly draining?: true;
}

export interface Tombstone {
  readonly id: string;
  readonly service: string;
  readonly version: number;
}

/** Who this node is; stamped on every instance it publishes. */
export interface NodeIdentity {
  readonly nodeId: string;
  readonly node: string;
  readonly address: string;
  readonly zone: string;
  readonly region: string;
}

export interface LocalState {
  readonly services: readonly LocalRecord[];
  readonly tombstones: readonly Tombstone[];
}

/** What the agent persists: its registrations plus node-level checks and every check's last status. */
export interface PersistedState extends LocalState {
  /** Node-level check definitions (no ServiceID), as sent. */
  readonly nodeChecks: readonly Readonly<Record<string, unknown>>[];
  /** Last status of every check, so a restart does not flap them. */
  readonly checkStatus: Readonly<Record<string, { readonly status: Health; readonly output: string }>>;
}

export type LocalChange =
  | { readonly kind: 'upsert'; readonly record: LocalRecord }
  | { readonly kind: 'remove'; readonly tombstone: Tombstone };

export class LocalServices {
  readonly #records = new Map<string, LocalRecord>();
  readonly #tombstones = new Map<string, Tombstone>();
  readonly #clock: VersionClock;
  readonly #listeners = new Set<(change: LocalChange) => void>();

  constructor(clock: VersionClock) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#records.size;
  }

  /** Restores persisted state; versions continue above what was stored. */
  restore(state: LocalState): void {
    let highest = 0;
    for (const r of state.services) {
      this.#records.set(r.def.id, { ...r, synced: false });
      highest = Math.max(highest, r.version);
    }
    for (const t of state.tombstones) {
      this.#tombstones.set(t.id, t);
      highest = Math.max(highest, t.version);
    }
    this.#clock.next(highest);
  }

  snapshot(): LocalState {
    return { services: [...this.#records.values()], tombstones: [...this.#tombstones.values()] };
  }

  onChange(listener: (change: LocalChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get(id: string): LocalRecord | undefined {
    return this.#records.get(id);
  }

  list(): LocalRecord[] {
    return [...this.#records.values()];
  }

  byName(name: string): LocalRecord[] {
    return this.list().filter((r) => r.def.name === name);
  }

  tombstones(): Tombstone[] {
    return [...this.#tombstones.values()];
  }

  /** Adds or replaces a service. Replacing keeps its current check results. */
  register(
    def: ServiceDefinition,
    checks?: readonly CheckState[],
    checkDefinitions?: readonly Readonly<Record<string, unknown>>[],
  ): LocalRecord {
    const old = this.#records.get(def.id);
    const floor = Math.max(old?.version ?? 0, this.#tombstones.get(def.id)?.version ?? 0);
    const record: LocalRecord = {
      def,
      version: this.#clock.next(floor),
      synced: false,
      checks: checks ?? old?.checks ?? [],
      checkDefinitions: checkDefinitions ?? old?.checkDefinitions ?? [],
    };
    this.#tombstones.delete(def.id);
    // A service renamed under the same ID leaves its old name: withdraw it there.
    if (old !== undefined && old.def.name !== def.name) {
      const t: Tombstone = { id: def.id, service: old.def.name, version: record.version };
      this.#emit({ kind: 'remove', tombstone: t });
    }
    this.#records.set(def.id, record);
    this.#emit({ kind: 'upsert', record });
    return record;
  }

  /** Removes a service; unknown IDs are ignored (Consul's behaviour). */
  deregister(id: string): Tombstone | undefined {
    const old = this.#records.get(id);
    if (old === undefined) return undefined;
    this.#records.delete(id);
    const t: Tombstone = { id, service: old.def.name, version: this.#clock.next(old.version) };
    this.#tombstones.set(id, t);
    this.#emit({ kind: 'remove', tombstone: t });
    return t;
  }

  /** Marks a service as draining (deregistered, still published so proxies can drain it). */
  markDraining(id: string): boolean {
    const old = this.#records.get(id);
    if (old === undefined || old.draining === true) return false;
    const record: LocalRecord = {
      ...old,
      draining: true,
      version: this.#clock.next(old.version),
      synced: false,
    };
    this.#records.set(id, record);
    this.#emit({ kind: 'upsert', record });
    return true;
  }

  /** Replaces a service's check results; a new version only when something visible changed. */
  setChecks(id: string, checks: readonly CheckState[]): void {
    const old = this.#records.get(id);
    if (old === undefined || sameChecks(old.checks, checks)) return;
    const record: LocalRecord = { ...old, checks, version: this.#clock.next(old.version), synced: false };
    this.#records.set(id, record);
    this.#emit({ kind: 'upsert', record });
  }

  /** Marks a publish confirmed by the session, if it confirms the current version. */
  confirmPublish(id: string, version: number): void {
    const r = this.#records.get(id);
    if (r !== undefined && r.version === version) this.#records.set(id, { ...r, synced: true });
  }

  /** Drops a tombstone once the session confirmed the removal. */
  confirmUnpublish(id: string, version: number): void {
    const t = this.#tombstones.get(id);
    if (t !== undefined && t.version <= version) this.#tombstones.delete(id);
  }

  #emit(change: LocalChange): void {
    for (const l of this.#listeners) l(change);
  }
}

/** Builds the published instance of a local record. */
export function toInstance(record: LocalRecord, node: NodeIdentity): Instance {
  const { def } = record;
  const checks: readonly CheckState[] =
    record.draining === true
      ? [
          ...record.checks,
          {
            id: 'meshreg:draining',
            name: 'Service draining',
            status: 'critical',
            output: 'deregistered; draining',
            type: '',
          },
        ]
      : record.checks;
  const health: Health = worstHealth(checks);
  return {
    id: def.id,
    service: def.name,
    nodeId: node.nodeId,
    node: node.node,
    nodeAddress: node.address,
    address: def.address,
    port: def.port,
    tags: def.tags,
    meta: def.meta,
    weights: def.weights,
    health,
    checks,
    zone: node.zone,
    region: node.region,
    ...(record.draining === true ? { draining: true as const } : {}),
  };
}

function sameChecks(a: readonly CheckState[], b: readonly CheckState[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((c, i) => {
    const d = b[i];
    return (
      d !== undefined && c.id === d.id && c.status === d.status && c.output === d.output && c.name === d.name
    );
  });
}

/** Validates a persisted local state; records that do not decode are reported and skipped. */
export function decodeLocalState(raw: unknown): { state: PersistedState; skipped: string[] } | undefined {
  if (!isRecord(raw) || !Array.isArray(raw['services']) || !Array.isArray(raw['tombstones']))
    return undefined;
  const skipped: string[] = [];
  const services: LocalRecord[] = [];
  for (const [i, r] of (raw['services'] as unknown[]).entries()) {
    const issues = new Issues();
    const rec = isRecord(r) ? r : {};
    const d = isRecord(rec['def']) ? rec['def'] : {};
    const path = `services[${i}]`;
    const id = readString(issues, d['id'], `${path}.def.id`, { required: true, maxLength: 256 });
    const name = readString(issues, d['name'], `${path}.def.name`, { required: true, maxLength: 256 });
    const tags =
      readArray(issues, d['tags'], `${path}.def.tags`, (t, p) =>
        readString(issues, t, p, { maxLength: 256 }),
      ) ?? [];
    const address = readString(issues, d['address'], `${path}.def.address`, { maxLength: 256 }) ?? '';
    const port = readInt(issues, d['port'], `${path}.def.port`, { max: 65535 }) ?? 0;
    const meta = readStringMap(issues, d['meta'], `${path}.def.meta`) ?? {};
    const w = isRecord(d['weights']) ? d['weights'] : {};
    const weights = {
      passing: readInt(issues, w['passing'], `${path}.def.weights.passing`) ?? 1,
      warning: readInt(issues, w['warning'], `${path}.def.weights.warning`) ?? 1,
    };
    const enableTagOverride =
      readBool(issues, d['enableTagOverride'], `${path}.def.enableTagOverride`) ?? false;
    const version = readInt(issues, rec['version'], `${path}.version`, { required: true, min: 1 });
    const probe = decodeInstance({
      id: 'x',
      service: 'x',
      nodeId: 'x',
      node: 'x',
      checks: rec['checks'] ?? [],
    });
    if (!probe.ok) issues.add(`${path}.checks`, 'invalid');
    if (!issues.empty || id === undefined || name === undefined || version === undefined || !probe.ok) {
      skipped.push(describe(issues.list));
      continue;
    }
    const defs = Array.isArray(rec['checkDefinitions'])
      ? (rec['checkDefinitions'] as unknown[]).filter(isRecord)
      : [];
    services.push({
      def: { id, name, tags, address, port, meta, weights, enableTagOverride },
      version,
      synced: false,
      checks: probe.value.checks,
      checkDefinitions: defs,
      ...(rec['draining'] === true ? { draining: true as const } : {}),
    });
  }
  const tombstones: Tombstone[] = [];
  for (const t of raw['tombstones'] as unknown[]) {
    const issues = new Issues();
    const o = isRecord(t) ? t : {};
    const id = readString(issues, o['id'], 'id', { required: true });
    const service = readString(issues, o['service'], 'service', { required: true });
    const version = readInt(issues, o['version'], 'version', { required: true, min: 1 });
    if (id !== undefined && service !== undefined && version !== undefined)
      tombstones.push({ id, service, version });
  }
  const nodeChecks = Array.isArray(raw['nodeChecks'])
    ? (raw['nodeChecks'] as unknown[]).filter(isRecord)
    : [];
  const checkStatus: Record<string, { status: Health; output: string }> = {};
  if (isRecord(raw['checkStatus'])) {
    for (const [id, v] of Object.entries(raw['checkStatus'])) {
      if (!isRecord(v)) continue;
      const st = v['status'];
      if (st === 'passing' || st === 'warning' || st === 'critical')
        setOwn(checkStatus, id, { status: st, output: typeof v['output'] === 'string' ? v['output'] : '' });
    }
  }
  return { state: { services, tombstones, nodeChecks, checkStatus }, skipped };
}
