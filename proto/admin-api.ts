/**
 * The admin API's answers (`/admin/...` on every control-plane port): their types and decoders.
 *
 * The servers build these bodies; `meshreg ctl` and any other client decode them here instead of
 * trusting a cast, so a bad or unexpected answer is reported with the path of the field at fault
 * (`members[1].leaseLeftMs: must be an integer 0..…`). An error answer of any route is
 * {@link AdminErrorBody}; a client branches on its `code` (or the HTTP status), never its message.
 */
import { MEMBER_ROLES, type MemberRole } from './cluster-records.js';
import { ERROR_TABLE, type ErrorCode } from './errors.js';
import { readInstance, type Instance } from './instance.js';
import { decodeSlotTableInto, type SlotTable } from './slot-table.js';
import { decodeSwitches, type Switches } from './switches.js';
import type { Decoded, FieldError } from './validate.js';
import { Issues, at, readArray, readBool, readInt, readObject, readOneOf, readString } from './validate.js';

/** Roles a member of meta can have. */
export const ADMIN_MEMBER_ROLES = MEMBER_ROLES;
export type AdminMemberRole = MemberRole;

/** One member as meta shows it (`GET /admin/members`, and the answer of a drain). */
export interface AdminMember {
  readonly id: string;
  readonly role: AdminMemberRole;
  /** The member's link URL (`ws://…/v1/…`). */
  readonly url: string;
  /** The member's HTTP base (its `/health`, `/metrics`, `/admin`). */
  readonly http: string;
  readonly connected: boolean;
  readonly leaseLeftMs: number;
  readonly draining: boolean;
}

/** `GET /admin/members` on meta. */
export interface AdminMembers {
  readonly members: readonly AdminMember[];
}

/**
 * `GET /admin/slots` on meta: the slot table and how many slots each data server leads. Before meta
 * has arranged any slots the table is empty: `slotCount` 0 and no slots.
 */
export interface AdminSlots extends SlotTable {
  readonly leaders: Readonly<Record<string, number>>;
}

export const REPLICA_ROLES = ['leader', 'follower'] as const;

/** One replica of a service's slot; `http` is '' when meta no longer knows that member. */
export interface AdminReplica {
  readonly id: string;
  readonly role: (typeof REPLICA_ROLES)[number];
  readonly http: string;
}

/** `GET /admin/services/:service` on meta: where a service's datum lives. */
export interface AdminServiceReplicas {
  readonly service: string;
  readonly slot: number;
  readonly epoch: number;
  readonly replicas: readonly AdminReplica[];
}

/** One ready agent connection of a session server. */
export interface AdminConnection {
  readonly id: string;
  readonly nodeId?: string;
  readonly nodeName?: string;
  /** The remote IP address (what the operator switches match). */
  readonly address: string;
  /** The remote `address:port`. */
  readonly remote: string;
  readonly subscriptions: number;
  readonly publishers: number;
}

/** `GET /admin/connections` on a session server. */
export interface AdminConnections {
  readonly sessionId: string;
  readonly connections: readonly AdminConnection[];
}

/** How a data server holds a slot; `none` when the slot is not its own. */
export const REPLICA_STATES = ['migrating', 'ready', 'follower', 'none'] as const;

/** `GET /admin/datums/:service` on a data server: its replica of a service's datum. */
export interface AdminDatum {
  readonly dataId: string;
  readonly slot: number;
  readonly state: (typeof REPLICA_STATES)[number];
  readonly epoch: number;
  readonly key: string;
  /** 0 when this replica holds no datum for the key. */
  readonly version: number;
  readonly instances: readonly Instance[];
}

/** The body of every admin error answer (what `MeshregError.toJSON()` writes). */
export interface AdminErrorBody {
  readonly error: {
    readonly code: ErrorCode;
    readonly message: string;
    readonly fields?: readonly FieldError[];
  };
}

/** `GET /admin/switches` on meta and on sessions, and the answer of every switch change. */
export type AdminSwitches = Switches;

/** The roles whose removals protection mode guards, and what each counts. */
export const PROTECTION_ROLES = ['meta', 'data', 'session'] as const;
export const PROTECTION_KINDS = ['members', 'sessions', 'connections'] as const;

/**
 * `GET /admin/protection` on any role, and the answer of `POST /admin/protection/release`: whether
 * protection mode holds removals there, what it holds, and its thresholds. After a release,
 * `removed` lists what the release removed (and `held` is empty).
 */
export interface AdminProtection {
  readonly role: (typeof PROTECTION_ROLES)[number];
  /** The role's member ID (meta: its link URL). */
  readonly id: string;
  readonly kind: (typeof PROTECTION_KINDS)[number];
  readonly active: boolean;
  readonly held: readonly string[];
  readonly removedInWindow: number;
  readonly released: number;
  readonly maxRemovalPercent: number;
  readonly windowMs: number;
  readonly minRemovals: number;
  readonly removed?: readonly string[];
}

const ID = { required: true, maxLength: 512 } as const;
const URL_RULES = { maxLength: 2048 } as const;
/** Counts are generous: an answer lists what a cluster holds, not what one request may carry. */
const MAX_MEMBERS = 100_000;
const MAX_CONNECTIONS = 10_000_000;
const MAX_INSTANCES = 10_000_000;
const MAX_SLOTS = 65_536;
const ERROR_CODES = Object.keys(ERROR_TABLE) as ErrorCode[];

type Reader<T> = (issues: Issues, o: Record<string, unknown>, path: string) => T | undefined;

/** A decoder of a whole body from a reader of one object. */
function bodyDecoder<T>(read: Reader<T>): (raw: unknown) => Decoded<T> {
  return (raw) => {
    const issues = new Issues();
    const o = readObject(issues, raw, '');
    return issues.result(o && read(issues, o, ''));
  };
}

/** Reads an array of objects, each with `read`. */
function readObjects<T>(
  issues: Issues,
  raw: unknown,
  path: string,
  read: Reader<T>,
  maxItems: number,
): T[] | undefined {
  return readArray(
    issues,
    raw,
    path,
    (item, p) => {
      const o = readObject(issues, item, p);
      return o && read(issues, o, p);
    },
    { required: true, maxItems },
  );
}

const readMember: Reader<AdminMember> = (issues, o, p) => {
  const id = readString(issues, o['id'], at(p, 'id'), ID);
  const role = readOneOf(issues, o['role'], at(p, 'role'), ADMIN_MEMBER_ROLES, true);
  const url = readString(issues, o['url'], at(p, 'url'), { ...URL_RULES, required: true });
  const http = readString(issues, o['http'], at(p, 'http'), { ...URL_RULES, required: true });
  const connected = readBool(issues, o['connected'], at(p, 'connected'), true);
  const leaseLeftMs = readInt(issues, o['leaseLeftMs'], at(p, 'leaseLeftMs'), { required: true });
  const draining = readBool(issues, o['draining'], at(p, 'draining'), true);
  if (id === undefined || role === undefined || url === undefined || http === undefined) return undefined;
  if (connected === undefined || leaseLeftMs === undefined || draining === undefined) return undefined;
  return { id, role, url, http, connected, leaseLeftMs, draining };
};

/** Decodes meta's `GET /admin/members`. */
export const decodeAdminMembers = bodyDecoder<AdminMembers>((issues, o) => {
  const members = readObjects(issues, o['members'], 'members', readMember, MAX_MEMBERS);
  return members && { members };
});

/** Decodes one member: the answer of `POST /admin/members/:id/drain`. */
export const decodeAdminMember = bodyDecoder(readMember);

/** Reads a slot table that may still be empty (slotCount 0, before meta arranged any slot). */
function readTable(issues: Issues, o: Record<string, unknown>): SlotTable | undefined {
  if (o['slotCount'] !== 0) return decodeSlotTableInto(issues, o);
  const epoch = readInt(issues, o['epoch'], 'epoch', { required: true });
  const slots = readArray(issues, o['slots'], 'slots', () => undefined, { required: true, maxItems: 0 });
  return epoch === undefined || slots === undefined ? undefined : { epoch, slotCount: 0, slots: [] };
}

function readLeaders(issues: Issues, raw: unknown): Record<string, number> | undefined {
  const o = readObject(issues, raw, 'leaders');
  if (o === undefined) return undefined;
  const leaders: [string, number][] = [];
  for (const [id, count] of Object.entries(o)) {
    const n = readInt(issues, count, at('leaders', id.slice(0, 64)), { required: true, max: MAX_SLOTS });
    if (n !== undefined) leaders.push([id, n]);
  }
  // fromEntries defines own properties, so a member named `__proto__` stays a plain key.
  return Object.fromEntries(leaders);
}

/** Decodes meta's `GET /admin/slots`. */
export const decodeAdminSlots = bodyDecoder<AdminSlots>((issues, o) => {
  const table = readTable(issues, o);
  const leaders = readLeaders(issues, o['leaders']);
  if (table === undefined || leaders === undefined) return undefined;
  return { epoch: table.epoch, slotCount: table.slotCount, leaders, slots: table.slots };
});

const readReplica: Reader<AdminReplica> = (issues, o, p) => {
  const id = readString(issues, o['id'], at(p, 'id'), ID);
  const role = readOneOf(issues, o['role'], at(p, 'role'), REPLICA_ROLES, true);
  const http = readString(issues, o['http'], at(p, 'http'), URL_RULES);
  if (id === undefined || role === undefined || http === undefined) return undefined;
  return { id, role, http };
};

/** Decodes meta's `GET /admin/services/:service`. */
export const decodeAdminServiceReplicas = bodyDecoder<AdminServiceReplicas>((issues, o) => {
  const service = readString(issues, o['service'], 'service', { required: true, maxLength: 256 });
  const slot = readInt(issues, o['slot'], 'slot', { required: true, max: MAX_SLOTS - 1 });
  const epoch = readInt(issues, o['epoch'], 'epoch', { required: true });
  const replicas = readObjects(issues, o['replicas'], 'replicas', readReplica, 1 + 64);
  if (service === undefined || slot === undefined || epoch === undefined || replicas === undefined)
    return undefined;
  return { service, slot, epoch, replicas };
});

const readConnection: Reader<AdminConnection> = (issues, o, p) => {
  const id = readString(issues, o['id'], at(p, 'id'), ID);
  const nodeId = readString(issues, o['nodeId'], at(p, 'nodeId'), { maxLength: 128 });
  const nodeName = readString(issues, o['nodeName'], at(p, 'nodeName'), { maxLength: 256 });
  const address = readString(issues, o['address'], at(p, 'address'), { required: true, maxLength: 256 });
  const remote = readString(issues, o['remote'], at(p, 'remote'), { required: true, maxLength: 512 });
  const subscriptions = readInt(issues, o['subscriptions'], at(p, 'subscriptions'), { required: true });
  const publishers = readInt(issues, o['publishers'], at(p, 'publishers'), { required: true });
  if (id === undefined || address === undefined || remote === undefined) return undefined;
  if (subscriptions === undefined || publishers === undefined) return undefined;
  return {
    id,
    ...(nodeId === undefined ? {} : { nodeId }),
    ...(nodeName === undefined ? {} : { nodeName }),
    address,
    remote,
    subscriptions,
    publishers,
  };
};

/** Decodes a session's `GET /admin/connections`. */
export const decodeAdminConnections = bodyDecoder<AdminConnections>((issues, o) => {
  const sessionId = readString(issues, o['sessionId'], 'sessionId', ID);
  const connections = readObjects(issues, o['connections'], 'connections', readConnection, MAX_CONNECTIONS);
  return sessionId === undefined || connections === undefined ? undefined : { sessionId, connections };
});

/** Decodes a data server's `GET /admin/datums/:service`. */
export const decodeAdminDatum = bodyDecoder<AdminDatum>((issues, o) => {
  const dataId = readString(issues, o['dataId'], 'dataId', ID);
  const slot = readInt(issues, o['slot'], 'slot', { required: true, max: MAX_SLOTS - 1 });
  const state = readOneOf(issues, o['state'], 'state', REPLICA_STATES, true);
  const epoch = readInt(issues, o['epoch'], 'epoch', { required: true });
  const key = readString(issues, o['key'], 'key', { required: true, maxLength: 256 });
  const version = readInt(issues, o['version'], 'version', { required: true });
  const instances = readArray(issues, o['instances'], 'instances', (i, p) => readInstance(issues, i, p), {
    required: true,
    maxItems: MAX_INSTANCES,
  });
  if (dataId === undefined || slot === undefined || state === undefined || epoch === undefined)
    return undefined;
  if (key === undefined || version === undefined || instances === undefined) return undefined;
  return { dataId, slot, state, epoch, key, version, instances };
});

/** Decodes `GET /admin/switches` (meta or session) and the answer of every switch change on meta. */
export const decodeAdminSwitches: (raw: unknown) => Decoded<AdminSwitches> = decodeSwitches;

function readIds(issues: Issues, raw: unknown, path: string, required: boolean): string[] | undefined {
  if (raw === undefined && !required) return undefined;
  return readArray(issues, raw, path, (item, p) => readString(issues, item, p, ID), {
    required: true,
    maxItems: MAX_CONNECTIONS,
  });
}

/** Decodes `GET /admin/protection` and `POST /admin/protection/release` of any role. */
export const decodeAdminProtection = bodyDecoder<AdminProtection>((issues, o) => {
  const role = readOneOf(issues, o['role'], 'role', PROTECTION_ROLES, true);
  const id = readString(issues, o['id'], 'id', ID);
  const kind = readOneOf(issues, o['kind'], 'kind', PROTECTION_KINDS, true);
  const active = readBool(issues, o['active'], 'active', true);
  const held = readIds(issues, o['held'], 'held', true);
  const removed = readIds(issues, o['removed'], 'removed', false);
  const int = (k: string, max?: number): number | undefined =>
    readInt(issues, o[k], k, max === undefined ? { required: true } : { required: true, max });
  const removedInWindow = int('removedInWindow');
  const released = int('released');
  const maxRemovalPercent = int('maxRemovalPercent', 100);
  const windowMs = int('windowMs');
  const minRemovals = int('minRemovals');
  if (role === undefined || id === undefined || kind === undefined || active === undefined) return undefined;
  if (held === undefined || removedInWindow === undefined || released === undefined) return undefined;
  if (maxRemovalPercent === undefined || windowMs === undefined || minRemovals === undefined)
    return undefined;
  const base = { role, id, kind, active, held, removedInWindow, released, maxRemovalPercent, windowMs };
  return { ...base, minRemovals, ...(removed === undefined ? {} : { removed }) };
});

const readFieldError: Reader<FieldError> = (issues, o, p) => {
  const path = readString(issues, o['path'], at(p, 'path'), { required: true, maxLength: 4096 });
  const message = readString(issues, o['message'], at(p, 'message'), { required: true, maxLength: 4096 });
  return path === undefined || message === undefined ? undefined : { path, message };
};

/** Decodes an admin error answer: `{error: {code, message, fields?}}`. */
export const decodeAdminError = bodyDecoder<AdminErrorBody>((issues, o) => {
  const e = readObject(issues, o['error'], 'error');
  if (e === undefined) return undefined;
  const code = readOneOf(issues, e['code'], 'error.code', ERROR_CODES, true);
  const message = readString(issues, e['message'], 'error.message', {
    required: true,
    minLength: 0,
    maxLength: 1 << 20,
  });
  const fields =
    e['fields'] === undefined
      ? undefined
      : readObjects(issues, e['fields'], 'error.fields', readFieldError, 1_000_000);
  if (code === undefined || message === undefined) return undefined;
  return { error: fields === undefined ? { code, message } : { code, message, fields } };
});
