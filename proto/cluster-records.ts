/**
 * The records that travel on more than one server link (data link, replication, meta link) and
 * their readers: publishers, datums and their views, change notices, members. Each link's contract
 * (`meta-link.ts`, `data-link.ts`, `replication-link.ts`) builds its messages from these.
 */
import { readInstance, SERVICE_NAME_PATTERN, type Instance } from './instance.js';
import { readTraceparent, withTraceparent } from './trace-context.js';
import {
  Issues,
  at,
  decodeObject,
  readArray,
  readBool,
  readInt,
  readObject,
  readString,
  type Decoded,
} from './validate.js';

/** Most items a list of a server-link message may carry (keys, publishers, changes). */
export const MAX_ITEMS = 100_000;

/** A service key: the name of a service, as registered. */
export const KEY_RULES = {
  required: true,
  maxLength: 256,
  pattern: SERVICE_NAME_PATTERN,
  patternHint: 'must be a service name',
} as const;

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

/** The roles that join meta as members. */
export const MEMBER_ROLES = ['data', 'session'] as const;
export type MemberRole = (typeof MEMBER_ROLES)[number];

/** Slots of a table of `slotCount` slots (a migration's collect, a follower's replicate). */
export interface SlotSelection {
  readonly slots: readonly number[];
  readonly slotCount: number;
  /**
   * A collect for a restore (a session connecting to a data server that never collected from it):
   * the publishers of its open connections only. A connection in its grace period may hold what its
   * agent has since withdrawn through another session; a rebuild takes those, a restore does not.
   */
  readonly openOnly?: boolean;
}

/** Reads the ID `o[key]` under `path` (an owner, a registration ID: at most 512 characters). */
function readId(
  issues: Issues,
  o: Record<string, unknown> | undefined,
  key: string,
  path: string,
): string | undefined {
  return readString(issues, o?.[key], at(path, key), { required: true, maxLength: 512 });
}

export function readPublishItem(issues: Issues, raw: unknown, path: string): PublishItem | undefined {
  const o = readObject(issues, raw, path);
  return o === undefined ? undefined : readPublishFields(issues, o, path);
}

export function readOwnedPublisher(issues: Issues, raw: unknown, path: string): OwnedPublisher | undefined {
  const o = readObject(issues, raw, path);
  if (o === undefined) return undefined;
  const item = readPublishFields(issues, o, path);
  const owner = readId(issues, o, 'owner', path);
  return item === undefined || owner === undefined ? undefined : { ...item, owner };
}

function readPublishFields(
  issues: Issues,
  o: Record<string, unknown>,
  path: string,
): PublishItem | undefined {
  const registrationId = readId(issues, o, 'registrationId', path);
  const instance = readInstance(issues, o['instance'], at(path, 'instance'));
  const version = readInt(issues, o['version'], at(path, 'version'), { required: true, min: 1 });
  if (registrationId === undefined || instance === undefined || version === undefined) return undefined;
  return { registrationId, instance, version };
}

export function readUnpublishItem(issues: Issues, raw: unknown, path: string): UnpublishItem | undefined {
  const o = readObject(issues, raw, path);
  const key = readString(issues, o?.['key'], at(path, 'key'), KEY_RULES);
  const registrationId = readId(issues, o, 'registrationId', path);
  const version = readInt(issues, o?.['version'], at(path, 'version'), { required: true, min: 1 });
  if (key === undefined || registrationId === undefined || version === undefined) return undefined;
  return { key, registrationId, version };
}

export function readDatumChange(issues: Issues, raw: unknown, path: string): DatumChange | undefined {
  const o = readObject(issues, raw, path);
  const key = readString(issues, o?.['key'], at(path, 'key'), KEY_RULES);
  const version = readInt(issues, o?.['version'], at(path, 'version'), { required: true });
  const traceparent = readTraceparent(issues, o?.['traceparent'], at(path, 'traceparent'));
  if (key === undefined || version === undefined) return undefined;
  return { key, version, ...withTraceparent(traceparent) };
}

/** A list of up to {@link MAX_ITEMS} items, each read with `read`. */
export function readItems<T>(
  issues: Issues,
  raw: unknown,
  path: string,
  read: (issues: Issues, raw: unknown, path: string) => T | undefined,
  required = true,
): T[] | undefined {
  return readArray(issues, raw, path, (item, p) => read(issues, item, p), {
    required,
    maxItems: MAX_ITEMS,
  });
}

/** A list of service keys. */
export function readKeys(issues: Issues, raw: unknown, path: string, required = true): string[] | undefined {
  return readItems(issues, raw, path, (i, item, p) => readString(i, item, p, KEY_RULES), required);
}

export function readMembers(issues: Issues, raw: unknown, path: string): Member[] {
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

/** A publisher with its owner (one item of a paged `collect` answer). */
export const decodeOwnedPublisher = (raw: unknown): Decoded<OwnedPublisher> => {
  const issues = new Issues();
  return issues.result(readOwnedPublisher(issues, raw, ''));
};

export const decodeSlotSelection = (raw: unknown): Decoded<SlotSelection> =>
  decodeObject(raw, (issues, o) => {
    const slots = readArray(
      issues,
      o['slots'],
      'slots',
      (s, p) => readInt(issues, s, p, { required: true }),
      {
        required: true,
        maxItems: 65536,
      },
    );
    const slotCount = readInt(issues, o['slotCount'], 'slotCount', { required: true, min: 1, max: 65536 });
    const openOnly = readBool(issues, o['openOnly'], 'openOnly');
    if (slots === undefined || slotCount === undefined) return undefined;
    return openOnly === true ? { slots, slotCount, openOnly } : { slots, slotCount };
  });

export const decodeDatumView = (raw: unknown): Decoded<DatumView> =>
  decodeObject(raw, (issues, o) => {
    const key = readString(issues, o['key'], 'key', KEY_RULES);
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
  decodeObject(raw, (issues, o) => {
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
