/**
 * The envelope of the links between servers (session ⇄ data, data ⇄ data, members ⇄ meta):
 * JSON text frames carrying requests, responses and one-way events, in both directions.
 */
import { Issues, readInt, readObject, readString, type Decoded } from './validate.js';

/** Bumped on any incompatible change of a server link; peers refuse other versions (close 4002). */
export const CLUSTER_PROTOCOL_VERSION = 1;

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
