/**
 * The envelope of the links between servers (session ⇄ data, data ⇄ data, members ⇄ meta):
 * JSON text frames carrying requests, responses and one-way events, in both directions.
 *
 * Every method and event of a link is one typed value, in the shape of grpc-js's
 * `MethodDefinition`: its name on the wire and the decoders of what travels. Each link's contract
 * lists them (`meta-link.ts`, `data-link.ts`, `replication-link.ts`); both ends are typed by the
 * same value. This file also holds the two methods every link shares: `hello` and `page`.
 */
import { MEMBER_ROLES, type MemberRole } from './cluster-records.js';
import { MeshregError } from './errors.js';
import {
  Issues,
  decodeField,
  decodeObject,
  readArray,
  readInt,
  readObject,
  readOneOf,
  readString,
  type Decoded,
} from './validate.js';

/**
 * Bumped on any incompatible change of a server link; peers refuse other versions (close 4002).
 * 2: `collect` and `replicate` answer in pages ({@link Page}).
 * 3: `publish` and `unpublish` answer one outcome per item, `stale_epoch` among them (write-outcomes).
 */
export const CLUSTER_PROTOCOL_VERSION = 3;

/** A decoder: the value, or every error with its path. */
export type Decoder<T> = (raw: unknown) => Decoded<T>;

/** A request/response method: params `P` sent, result `R` answered. */
export interface RpcMethod<P, R> {
  readonly name: string;
  readonly params: Decoder<P>;
  readonly result: Decoder<R>;
}

/**
 * A method whose answer is a list too large for one frame: items `I` come in pages ({@link Page}),
 * the next one fetched with {@link PAGE_METHOD} and the cursor of the previous one.
 */
export interface PagedMethod<P, I> {
  readonly name: string;
  readonly params: Decoder<P>;
  readonly item: Decoder<I>;
}

/** A one-way event carrying `T`. */
export interface RpcEventDef<T> {
  readonly name: string;
  readonly decode: Decoder<T>;
}

export function rpcMethod<P, R>(name: string, params: Decoder<P>, result: Decoder<R>): RpcMethod<P, R> {
  return Object.freeze({ name, params, result });
}

export function pagedMethod<P, I>(name: string, params: Decoder<P>, item: Decoder<I>): PagedMethod<P, I> {
  return Object.freeze({ name, params, item });
}

export function rpcEvent<T>(name: string, decode: Decoder<T>): RpcEventDef<T> {
  return Object.freeze({ name, decode });
}

/** The result of a method that answers nothing but success (an acknowledgement): any value will do. */
export const decodeAck: Decoder<void> = () => ({ ok: true, value: undefined });

/** Params of a method that takes none: whatever is sent is ignored. */
export type NoParams = Readonly<Record<string, never>>;
export const decodeNoParams: Decoder<NoParams> = () => ({ ok: true, value: {} });

export interface RpcRequest {
  readonly t: 'req';
  readonly id: number;
  readonly method: string;
  readonly params: unknown;
}

export interface RpcResponse {
  readonly t: 'res';
  readonly id: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
}

export interface RpcEvent {
  readonly t: 'evt';
  readonly name: string;
  readonly payload: unknown;
}

export type RpcFrame = RpcRequest | RpcResponse | RpcEvent;

export function decodeRpcFrame(raw: unknown): Decoded<RpcFrame> {
  const issues = new Issues();
  const o = readObject(issues, raw, '');
  if (o === undefined) return issues.result<RpcFrame>(undefined);
  switch (o['t']) {
    case 'req': {
      const id = readInt(issues, o['id'], 'id', { required: true });
      const method = readString(issues, o['method'], 'method', { required: true, maxLength: 64 });
      if (id === undefined || method === undefined) return issues.result<RpcFrame>(undefined);
      return issues.result<RpcFrame>({ t: 'req', id, method, params: o['params'] });
    }
    case 'res': {
      const id = readInt(issues, o['id'], 'id', { required: true });
      const ok = o['ok'];
      if (typeof ok !== 'boolean') issues.add('ok', 'must be true or false');
      if (id === undefined || typeof ok !== 'boolean') return issues.result<RpcFrame>(undefined);
      if (ok) return issues.result<RpcFrame>({ t: 'res', id, ok, result: o['result'] });
      const e = readObject(issues, o['error'], 'error');
      const code = readString(issues, e?.['code'], 'error.code', { required: true, maxLength: 64 });
      const message = readString(issues, e?.['message'], 'error.message', { maxLength: 4096 }) ?? '';
      if (code === undefined) return issues.result<RpcFrame>(undefined);
      return issues.result<RpcFrame>({ t: 'res', id, ok, error: { code, message } });
    }
    case 'evt': {
      const name = readString(issues, o['name'], 'name', { required: true, maxLength: 64 });
      if (name === undefined) return issues.result<RpcFrame>(undefined);
      return issues.result<RpcFrame>({ t: 'evt', name, payload: o['payload'] });
    }
    default:
      issues.add('t', 'must be req, res or evt');
      return issues.result<RpcFrame>(undefined);
  }
}

/**
 * Reads the `protocolVersion` of a hello (agent link or server link). Any number decodes, so that a
 * peer of another version (0, negative, fractional, huge) is told `unsupported_protocol` (4002) by
 * {@link protocolMismatch}; only a missing or non-number version is a malformed frame (4000).
 */
export function readProtocolVersion(issues: Issues, raw: unknown, path: string): number | undefined {
  if (raw === undefined || raw === null) return issues.add(path, 'is required');
  if (typeof raw !== 'number') return issues.add(path, 'must be a number');
  return raw;
}

/** The `unsupported_protocol` error when a hello's version `got` is not the `want`ed one, else undefined. */
export function protocolMismatch(link: string, got: number, want: number): MeshregError | undefined {
  if (got === want) return undefined;
  return new MeshregError(
    'unsupported_protocol',
    `${link} protocol ${String(got)} is not supported (want ${want})`,
  );
}

/** The first request on every server link: who calls, and with which protocol and token. */
/**
 * Who may say a hello: the member roles, and `federation` (another data center's session importing
 * what this one exports to it; only on the federation link, `federation-link.ts`).
 */
export const LINK_ROLES = [...MEMBER_ROLES, 'federation'] as const;
export type LinkRole = (typeof LINK_ROLES)[number];

export interface LinkHello {
  readonly role: LinkRole;
  readonly id: string;
  readonly url: string;
  readonly protocolVersion: number;
  readonly token: string;
  /**
   * A nonce of the sender's process (optional: older peers do not send it). Roles of one process
   * share it, and never expire each other by lease.
   */
  readonly process?: string;
}

/** A hello of a member role (what member links accept: `RoleServer.link` refuses the others). */
export type MemberHello = LinkHello & { readonly role: MemberRole };

/** What a hello answers: meta tells the member its lease, a data server its own ID. */
export interface HelloAnswer {
  readonly leaseMs?: number;
  readonly id?: string;
}

export const decodeLinkHello: Decoder<LinkHello> = (raw) =>
  decodeObject(raw, (issues, o) => {
    const role = readOneOf(issues, o['role'], 'role', LINK_ROLES, true);
    const id = readString(issues, o['id'], 'id', { required: true, maxLength: 256 });
    const url = readString(issues, o['url'], 'url', { maxLength: 512 }) ?? '';
    const protocolVersion = readProtocolVersion(issues, o['protocolVersion'], 'protocolVersion');
    const token = readString(issues, o['token'], 'token', { maxLength: 4096 }) ?? '';
    const process = readString(issues, o['process'], 'process', { maxLength: 64 });
    if (role === undefined || id === undefined || protocolVersion === undefined) return undefined;
    return { role, id, url, protocolVersion, token, ...(process === undefined ? {} : { process }) };
  });

export const decodeHelloAnswer: Decoder<HelloAnswer> = (raw) =>
  decodeObject(raw, (issues, o) => {
    const leaseMs = readInt(issues, o['leaseMs'], 'leaseMs');
    const id = readString(issues, o['id'], 'id', { maxLength: 256 });
    return { ...(leaseMs === undefined ? {} : { leaseMs }), ...(id === undefined ? {} : { id }) };
  });

/**
 * The hello: the first request on every server link (meta link and data link alike). A server
 * answers nothing else first, and fails the link on a bad one.
 */
export const HELLO_METHOD = rpcMethod('hello', decodeLinkHello, decodeHelloAnswer);

// ---- paged results ------------------------------------------------------------------------------

export interface PageParams {
  /** The cursor the previous page returned. */
  readonly cursor: string;
}

/**
 * One page of a result too large for one frame (a migration's collect, a replication snapshot):
 * the responder takes the whole result at the first call and hands it out in pages of bounded
 * bytes; `cursor` is present while pages remain.
 */
export interface Page<T> {
  readonly items: readonly T[];
  readonly cursor?: string;
}

/** Most items one page may carry (the byte budget usually ends a page first). */
export const MAX_PAGE_ITEMS = 100_000;

export const decodePageParams: Decoder<PageParams> = decodeField('cursor', (issues, raw, path) =>
  readString(issues, raw, path, { required: true, maxLength: 64 }),
);

/** Validates a page, each item with `decodeItem`; item errors carry the item's path (`items[3].key`). */
export function decodePage<T>(raw: unknown, decodeItem: (raw: unknown) => Decoded<T>): Decoded<Page<T>> {
  const issues = new Issues();
  const o = readObject(issues, raw, '');
  if (o === undefined) return issues.result<Page<T>>(undefined);
  const items = readArray(
    issues,
    o['items'],
    'items',
    (item, path) => {
      const d = decodeItem(item);
      if (d.ok) return d.value;
      for (const e of d.errors) issues.add(e.path === '(body)' ? path : `${path}.${e.path}`, e.message);
      return undefined;
    },
    { required: true, maxItems: MAX_PAGE_ITEMS },
  );
  const cursor = readString(issues, o['cursor'], 'cursor', { maxLength: 64 });
  if (items === undefined) return issues.result<Page<T>>(undefined);
  return issues.result<Page<T>>(cursor === undefined ? { items } : { items, cursor });
}

/**
 * The method that fetches the next page of a paged result. Its items are left raw here: the caller
 * decodes them with the item decoder of the {@link PagedMethod} that opened the cursor.
 */
export const PAGE_METHOD = rpcMethod('page', decodePageParams, (raw) => decodePage(raw, keepRaw));

function keepRaw(raw: unknown): Decoded<unknown> {
  return { ok: true, value: raw };
}
