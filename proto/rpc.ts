/**
 * The envelope of the links between servers (session ⇄ data, data ⇄ data, members ⇄ meta):
 * JSON text frames carrying requests, responses and one-way events, in both directions.
 */
import { MeshregError } from './errors.js';
import { Issues, readArray, readInt, readObject, readString, type Decoded } from './validate.js';

/**
 * Bumped on any incompatible change of a server link; peers refuse other versions (close 4002).
 * 2: `collect` and `replicate` answer in pages ({@link Page}).
 * 3: `publish` and `unpublish` answer one outcome per item, `stale_epoch` among them (write-outcomes).
 */
export const CLUSTER_PROTOCOL_VERSION = 3;

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

// ---- paged results ------------------------------------------------------------------------------

/** The method that fetches the next page of a paged result: params {@link PageParams}. */
export const PAGE_METHOD = 'page';

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

export function decodePageParams(raw: unknown): Decoded<PageParams> {
  const issues = new Issues();
  const o = readObject(issues, raw, '');
  const cursor = readString(issues, o?.['cursor'], 'cursor', { required: true, maxLength: 64 });
  return issues.result(cursor === undefined ? undefined : { cursor });
}

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
