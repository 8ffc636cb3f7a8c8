/**
 * Messages between servers: members ⇄ meta, session ⇄ data, data ⇄ data. Each request, result and
 * event has a decoder; a handler never sees an unvalidated value.
 */
import { readInstance, SERVICE_NAME_PATTERN, type Instance } from './instance.js';
import { readProtocolVersion } from './rpc.js';
import { decodeSlotTableInto, type SlotTable } from './slot-table.js';
import { readTraceparent, withTraceparent } from './trace-context.js';
import {
  Issues,
  at,
  isRecord,
  readArray,
  readBool,
  readInt,
  readObject,
  readOneOf,
  readString,
  type Decoded,
} from './validate.js';

export { decodeDrain, decodeSwitches, type Switches } from './switches.js';

export const META_LINK_PATH = '/v1/meta-link';
/** Events meta sends to members besides `table` and `members`. */
export const SWITCHES_EVENT = 'switches';
export const DRAIN_EVENT = 'drain';
export const DATA_LINK_PATH = '/v1/data-link';

const MAX_ITEMS = 100_000;

// ---- shared records -----------------------------------------------------------------------------

export interface PublishItem {
  readonly registrationId: string;
  readonly instance: Instance;
  readonly version: number;
}

/** A publisher with the connection that owns it (owner = `<sessionId>:<n>`). */
export interface OwnedPublisher extends PublishItem {
  readonly owner: string;
}

export interface UnpublishItem {
  readonly key: string;
  readonly registrationId: string;
  readonly version: number;
}

export interface DatumView {
  readonly key: string;
  readonly version: number;
  readonly complete: boolean;
  readonly instances: readonly Instance[];
}

export interface CatalogView {
  readonly version: number;
  readonly complete: boolean;
  readonly services: Readonly<Record<string, readonly string[]>>;
}

export interface DatumChange {
  readonly key: string;
  readonly version: number;
  /** W3C trace context of the write that caused the change, when it was traced. */
  readonly traceparent?: string;
}

export interface Member {
  readonly id: string;
  readonly url: string;
}

export type MemberRole = 'data' | 'session';

// ---- requests -----------------------------------------------------------------------------------

export interface LinkHello {
  readonly role: MemberRole;
  readonly id: string;
  readonly url: string;
  readonly protocolVersion: number;
  readonly token: string;
}

export interface MembersEvent {
  readonly data: readonly Member[];
  readonly sessions: readonly Member[];
}

export interface PublishParams {
  readonly epoch: number;
  readonly owner: string;
  readonly items: readonly PublishItem[];
  /** W3C trace context of the session span that made the write (optional). */
  readonly traceparent?: string;
}

export interface UnpublishParams {
  readonly epoch: number;
  readonly items: readonly UnpublishItem[];
}

export interface InterestParams {
  readonly add: readonly string[];
  readonly remove: readonly string[];
  readonly catalog?: boolean;
}

export interface CollectParams {
  readonly slots: readonly number[];
  readonly slotCount: number;
}

export interface ReplicatedDatum {
  readonly key: string;
  readonly version: number;
  readonly publishers: readonly OwnedPublisher[];
}

/**
 * One item of a leader's paged snapshot (`replicate`): `{slot}` opens a slot the leader serves (so
 * the follower replaces it even when it is empty); then one item per publisher of each datum in it,
 * or one without `publisher` for a datum that has none. A datum's items share key and version.
 */
export type ReplicaItem =
  | { readonly slot: number }
  | {
      readonly slot: number;
      readonly key: string;
      readonly version: number;
      readonly publisher?: OwnedPublisher;
    };

/** One change streamed from a slot leader to its followers; with neither `put` nor `del`, a version bump. */
export interface ReplicationOp {
  readonly slot: number;
  readonly key: string;
  readonly version: number;
  readonly put?: OwnedPublisher;
  readonly del?: string;
  /** Leader's wall clock when sent, for the replication-lag measurement. */
  readonly sentAt: number;
}

// ---- decoders -----------------------------------------------------------------------------------

const keyRules = {
  required: true,
  maxLength: 256,
  pattern: SERVICE_NAME_PATTERN,
  patternHint: 'must be a service name',
} as const;

function run<T>(
  raw: unknown,
  read: (issues: Issues, o: Record<string, unknown>) => T | undefined,
): Decoded<T> {
  const issues = new Issues();
  const o = readObject(issues, raw, '');
  if (o === undefined) return issues.result<T>(undefined);
  const v = read(issues, o);
  return issues.result(v);
}

function readPublishItem(issues: Issues, raw: unknown, path: string): PublishItem | undefined {
  const o = readObject(issues, raw, path);
  if (o === undefined) return undefined;
  const registrationId = readString(issues, o['registrationId'], at(path, 'registrationId'), {
    required: true,
    maxLength: 512,
  });
  const instance = readInstance(issues, o['instance'], at(path, 'instance'));
  const version = readInt(issues, o['version'], at(path, 'version'), { required: true, min: 1 });
  if (registrationId === undefined || instance === undefined || version === undefined) return undefined;
  return { registrationId, instance, version };
}

function readOwned(issues: Issues, raw: unknown, path: string): OwnedPublisher | undefined {
  const item = readPublishItem(issues, raw, path);
  const owner = readString(issues, isRecord(raw) ? raw['owner'] : undefined, at(path, 'owner'), {
    required: true,
    maxLength: 512,
  });
  return item === undefined || owner === undefined ? undefined : { ...item, owner };
}

function readMembers(issues: Issues, raw: unknown, path: string): Member[] {
  return (
    readArray(
      issues,
      raw,
      path,
      (m, p) => {
        const mo = readObject(issues, m, p);
        const id = readString(issues, mo?.['id'], at(p, 'id'), { required: true, maxLength: 256 });
        const url = readString(issues, mo?.['url'], at(p, 'url'), { required: true, maxLength: 512 });
        return id === undefined || url === undefined ? undefined : { id, url };
      },
      { required: true, maxItems: 10_000 },
    ) ?? []
  );
}

const strings = (issues: Issues, raw: unknown, path: string, required = true): string[] | undefined =>
  readArray(issues, raw, path, (s, p) => readString(issues, s, p, keyRules), {
    required,
    maxItems: MAX_ITEMS,
  });

const ints = (issues: Issues, raw: unknown, path: string): number[] | undefined =>
  readArray(issues, raw, path, (s, p) => readInt(issues, s, p, { required: true }), {
    required: true,
    maxItems: 65536,
  });

export const decodeLinkHello = (raw: unknown): Decoded<LinkHello> =>
  run(raw, (issues, o) => {
    const role = readOneOf(issues, o['role'], 'role', ['data', 'session'] as const, true);
    const id = readString(issues, o['id'], 'id', { required: true, maxLength: 256 });
    const url = readString(issues, o['url'], 'url', { maxLength: 512 }) ?? '';
    const protocolVersion = readProtocolVersion(issues, o['protocolVersion'], 'protocolVersion');
    const token = readString(issues, o['token'], 'token', { maxLength: 4096 }) ?? '';
    if (role === undefined || id === undefined || protocolVersion === undefined) return undefined;
    return { role, id, url, protocolVersion, token };
  });

export const decodeMembers = (raw: unknown): Decoded<MembersEvent> =>
  run(raw, (issues, o) => ({
    data: readMembers(issues, o['data'], 'data'),
    sessions: readMembers(issues, o['sessions'], 'sessions'),
  }));

export const decodeSlotTable = (raw: unknown): Decoded<SlotTable> =>
  run(raw, (issues, o) => decodeSlotTableInto(issues, o));

export const decodePublishParams = (raw: unknown): Decoded<PublishParams> =>
  run(raw, (issues, o) => {
    const epoch = readInt(issues, o['epoch'], 'epoch', { required: true });
    const owner = readString(issues, o['owner'], 'owner', { required: true, maxLength: 512 });
    const items = readArray(issues, o['items'], 'items', (i, p) => readPublishItem(issues, i, p), {
      required: true,
      maxItems: MAX_ITEMS,
    });
    const traceparent = readTraceparent(issues, o['traceparent'], 'traceparent');
    if (epoch === undefined || owner === undefined || items === undefined) return undefined;
    return { epoch, owner, items, ...withTraceparent(traceparent) };
  });

export const decodeUnpublishParams = (raw: unknown): Decoded<UnpublishParams> =>
  run(raw, (issues, o) => {
    const epoch = readInt(issues, o['epoch'], 'epoch', { required: true });
    const items = readArray(
      issues,
      o['items'],
      'items',
      (i, p) => {
        const io = readObject(issues, i, p);
        const key = readString(issues, io?.['key'], at(p, 'key'), keyRules);
        const registrationId = readString(issues, io?.['registrationId'], at(p, 'registrationId'), {
          required: true,
          maxLength: 512,
        });
        const version = readInt(issues, io?.['version'], at(p, 'version'), { required: true, min: 1 });
        if (key === undefined || registrationId === undefined || version === undefined) return undefined;
        return { key, registrationId, version };
      },
      { required: true, maxItems: MAX_ITEMS },
    );
    return epoch === undefined || items === undefined ? undefined : { epoch, items };
  });

export const decodeOwner = (raw: unknown): Decoded<{ owner: string }> =>
  run(raw, (issues, o) => {
    const owner = readString(issues, o['owner'], 'owner', { required: true, maxLength: 512 });
    return owner === undefined ? undefined : { owner };
  });

export const decodeKey = (raw: unknown): Decoded<{ key: string }> =>
  run(raw, (issues, o) => {
    const key = readString(issues, o['key'], 'key', keyRules);
    return key === undefined ? undefined : { key };
  });

export const decodeKeys = (raw: unknown): Decoded<{ keys: string[] }> =>
  run(raw, (issues, o) => {
    const keys = strings(issues, o['keys'], 'keys');
    return keys === undefined ? undefined : { keys };
  });

export const decodeInterest = (raw: unknown): Decoded<InterestParams> =>
  run(raw, (issues, o) => {
    const add = strings(issues, o['add'], 'add', false) ?? [];
    const remove = strings(issues, o['remove'], 'remove', false) ?? [];
    const catalog = readBool(issues, o['catalog'], 'catalog');
    return catalog === undefined ? { add, remove } : { add, remove, catalog };
  });

export const decodeSlots = (raw: unknown): Decoded<CollectParams> =>
  run(raw, (issues, o) => {
    const slots = ints(issues, o['slots'], 'slots');
    const slotCount = readInt(issues, o['slotCount'], 'slotCount', { required: true, min: 1, max: 65536 });
    return slots === undefined || slotCount === undefined ? undefined : { slots, slotCount };
  });

export const decodeDatumView = (raw: unknown): Decoded<DatumView> =>
  run(raw, (issues, o) => {
    const key = readString(issues, o['key'], 'key', keyRules);
    const version = readInt(issues, o['version'], 'version', { required: true });
    const complete = readBool(issues, o['complete'], 'complete', true);
    const instances = readArray(issues, o['instances'], 'instances', (i, p) => readInstance(issues, i, p), {
      required: true,
      maxItems: 10_000_000,
    });
    if (key === undefined || version === undefined || complete === undefined || instances === undefined)
      return undefined;
    return { key, version, complete, instances };
  });

export const decodeCatalogView = (raw: unknown): Decoded<CatalogView> =>
  run(raw, (issues, o) => {
    const version = readInt(issues, o['version'], 'version', { required: true });
    const complete = readBool(issues, o['complete'], 'complete', true);
    const so = readObject(issues, o['services'], 'services');
    const services: Record<string, string[]> = {};
    for (const [name, tags] of Object.entries(so ?? {})) {
      const list = readArray(
        issues,
        tags,
        at('services', name),
        (t, p) => readString(issues, t, p, { maxLength: 256 }),
        { maxItems: 4096 },
      );
      if (list !== undefined) services[name] = list;
    }
    return version === undefined || complete === undefined ? undefined : { version, complete, services };
  });

export const decodeVersions = (raw: unknown): Decoded<{ versions: Record<string, number> }> =>
  run(raw, (issues, o) => {
    const vo = readObject(issues, o['versions'], 'versions');
    if (vo === undefined) return undefined;
    const versions: Record<string, number> = {};
    for (const [k, v] of Object.entries(vo)) {
      const n = readInt(issues, v, at('versions', k), { required: true });
      if (n !== undefined) versions[k] = n;
    }
    return { versions };
  });

export const decodeChanges = (raw: unknown): Decoded<{ changes: DatumChange[] }> =>
  run(raw, (issues, o) => {
    const changes = readArray(
      issues,
      o['changes'],
      'changes',
      (c, p) => {
        const co = readObject(issues, c, p);
        const key = readString(issues, co?.['key'], at(p, 'key'), keyRules);
        const version = readInt(issues, co?.['version'], at(p, 'version'), { required: true });
        const traceparent = readTraceparent(issues, co?.['traceparent'], at(p, 'traceparent'));
        if (key === undefined || version === undefined) return undefined;
        return { key, version, ...withTraceparent(traceparent) };
      },
      { required: true, maxItems: MAX_ITEMS },
    );
    return changes === undefined ? undefined : { changes };
  });

/** One item of a paged `collect` answer: a publisher with its owner. */
export const decodeOwnedPublisher = (raw: unknown): Decoded<OwnedPublisher> => {
  const issues = new Issues();
  return issues.result(readOwned(issues, raw, ''));
};

/** One item of a paged `replicate` answer ({@link ReplicaItem}). */
export const decodeReplicaItem = (raw: unknown): Decoded<ReplicaItem> =>
  run(raw, (issues, o) => {
    const slot = readInt(issues, o['slot'], 'slot', { required: true, max: 65535 });
    if (o['key'] === undefined) return slot === undefined ? undefined : { slot };
    const key = readString(issues, o['key'], 'key', keyRules);
    const version = readInt(issues, o['version'], 'version', { required: true });
    const publisher =
      o['publisher'] === undefined ? undefined : readOwned(issues, o['publisher'], 'publisher');
    if (slot === undefined || key === undefined || version === undefined) return undefined;
    return publisher === undefined ? { slot, key, version } : { slot, key, version, publisher };
  });

export const decodeReplicationOp = (raw: unknown): Decoded<ReplicationOp> =>
  run(raw, (issues, o) => {
    const slot = readInt(issues, o['slot'], 'slot', { required: true });
    const key = readString(issues, o['key'], 'key', keyRules);
    const version = readInt(issues, o['version'], 'version', { required: true });
    const sentAt = readInt(issues, o['sentAt'], 'sentAt', { required: true });
    const put = o['put'] === undefined ? undefined : readOwned(issues, o['put'], 'put');
    const del = readString(issues, o['del'], 'del', { maxLength: 512 });
    if (slot === undefined || key === undefined || version === undefined || sentAt === undefined)
      return undefined;
    // Neither put nor del: a version bump (after a slot rebuild).
    return {
      slot,
      key,
      version,
      sentAt,
      ...(put !== undefined ? { put } : {}),
      ...(del !== undefined ? { del } : {}),
    };
  });

export const PUBLISH_OUTCOMES = ['applied', 'owner-changed', 'unchanged', 'stale'] as const;
export type PublishOutcomeName = (typeof PUBLISH_OUTCOMES)[number];

export const decodePublishResult = (raw: unknown): Decoded<{ outcomes: PublishOutcomeName[] }> =>
  run(raw, (issues, o) => {
    const outcomes = readArray(
      issues,
      o['outcomes'],
      'outcomes',
      (x, p) => readOneOf(issues, x, p, PUBLISH_OUTCOMES, true),
      {
        required: true,
        maxItems: MAX_ITEMS,
      },
    );
    return outcomes === undefined ? undefined : { outcomes };
  });
