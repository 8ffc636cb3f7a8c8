/**
 * Requests, responses and events over one WebSocket, in both directions: the transport of every
 * link between servers. Handlers receive raw params and validate them with a `proto/` decoder; a
 * handler's MeshregError travels back as its code, anything else as `internal`.
 */
import type WebSocket from 'ws';
import { ERROR_TABLE, MeshregError, closeReason, type ErrorCode } from '../../proto/errors.js';
import type { Logger } from '../../proto/runtime/log.js';
import { PAGE_METHOD, decodePage, decodePageParams, decodeRpcFrame, type RpcFrame } from '../../proto/rpc.js';
import { describe, type Decoded } from '../../proto/validate.js';
import { LogBudget } from './log-budget.js';
import { Pager } from './pager.js';

export type RpcHandler = (params: unknown) => unknown;
export type EventHandler = (payload: unknown) => void;

export interface RpcPeerOptions {
  readonly callTimeoutMs: number;
  readonly logger: Logger;
  /** JSON bytes per page of a paged result: half the link's frame limit leaves room for the envelope. */
  readonly pageBytes: number;
  /**
   * When set, the first frame must be a request of this method (the hello): anything else fails
   * the link. The owner calls {@link RpcPeer.authenticated} once that request is accepted.
   */
  readonly firstMethod?: string;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

const ERROR_CODES = new Set(Object.keys(ERROR_TABLE));

export class RpcPeer {
  readonly #ws: WebSocket;
  readonly #opts: RpcPeerOptions;
  readonly #handlers = new Map<string, RpcHandler>();
  readonly #events = new Map<string, EventHandler>();
  readonly #pending = new Map<number, Pending>();
  readonly #log: LogBudget;
  readonly #pager: Pager;
  #nextId = 1;
  #closed = false;
  /** Set by {@link close}: from then on, frames are dropped unread and nothing more is logged for them. */
  #failed = false;
  #authenticated: boolean;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(ws: WebSocket, opts: RpcPeerOptions) {
    this.#ws = ws;
    this.#opts = opts;
    this.#log = new LogBudget(opts.logger);
    this.#authenticated = opts.firstMethod === undefined;
    this.#pager = new Pager({ pageBytes: opts.pageBytes, ttlMs: opts.callTimeoutMs * 2, maxOpen: 16 });
    this.#handlers.set(PAGE_METHOD, (raw) => this.#pager.next(params(raw, decodePageParams).cursor));
    ws.on('message', (data, isBinary) => {
      if (this.#failed || this.#closed) return;
      this.#onMessage(data, isBinary);
    });
    ws.on('error', (err) => {
      this.#log.debug('link socket error', { err });
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => {
        this.#closed = true;
        this.#pager.close();
        this.#log.flush();
        for (const p of this.#pending.values()) {
          clearTimeout(p.timer);
          p.reject(new MeshregError('unavailable', 'link closed'));
        }
        this.#pending.clear();
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  get isOpen(): boolean {
    return !this.#closed && this.#ws.readyState === this.#ws.OPEN;
  }

  /** The budgeted logger of this link (a flood from one peer writes a few lines, then a count). */
  get log(): LogBudget {
    return this.#log;
  }

  handle(method: string, handler: RpcHandler): this {
    this.#handlers.set(method, handler);
    return this;
  }

  /**
   * Serves `method` as a paged result: `produce` returns the whole list once, the caller receives it
   * in pages of bounded size ({@link callPaged} on the other side).
   */
  handlePaged(method: string, produce: (params: unknown) => readonly unknown[]): this {
    return this.handle(method, (raw) => this.#pager.first(produce(raw)));
  }

  /** Marks the hello as accepted: requests of any method are served from now on. */
  authenticated(): void {
    this.#authenticated = true;
  }

  on(event: string, handler: EventHandler): this {
    this.#events.set(event, handler);
    return this;
  }

  /** Calls `method` on the peer; the result is validated with `decode`. */
  async call<T>(
    method: string,
    params: unknown,
    decode: (raw: unknown) => Decoded<T>,
    timeoutMs?: number,
  ): Promise<T> {
    const raw = await this.#callRaw(method, params, timeoutMs);
    const decoded = decode(raw);
    if (!decoded.ok)
      throw new MeshregError('invalid_frame', `bad ${method} result: ${describe(decoded.errors)}`);
    return decoded.value;
  }

  /** Calls a paged `method` and gathers every page, each item validated with `decodeItem`. */
  async callPaged<T>(
    method: string,
    params: unknown,
    decodeItem: (raw: unknown) => Decoded<T>,
    timeoutMs?: number,
  ): Promise<T[]> {
    const out: T[] = [];
    let raw = await this.#callRaw(method, params, timeoutMs);
    for (;;) {
      const page = decodePage(raw, decodeItem);
      if (!page.ok) throw new MeshregError('invalid_frame', `bad ${method} page: ${describe(page.errors)}`);
      out.push(...page.value.items);
      if (page.value.cursor === undefined) return out;
      raw = await this.#callRaw(PAGE_METHOD, { cursor: page.value.cursor }, timeoutMs);
    }
  }

  /** Calls `method` when the result carries nothing (an acknowledgement). */
  async callVoid(method: string, params: unknown): Promise<void> {
    await this.#callRaw(method, params);
  }

  emit(name: string, payload: unknown): void {
    if (this.isOpen) this.#ws.send(JSON.stringify({ t: 'evt', name, payload }));
  }

  /** Fails the link: closes it with the close code of `code`; frames received after this are dropped. */
  close(code: ErrorCode, reason: string): void {
    if (this.#closed || this.#failed) return;
    this.#failed = true;
    this.#ws.close(ERROR_TABLE[code].ws, closeReason(`${code}: ${reason}`));
    setTimeout(() => {
      this.#ws.terminate();
    }, 1000).unref();
  }

  terminate(): void {
    this.#ws.terminate();
  }

  #callRaw(method: string, params: unknown, timeoutMs = this.#opts.callTimeoutMs): Promise<unknown> {
    if (!this.isOpen) return Promise.reject(new MeshregError('unavailable', `link not open for ${method}`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new MeshregError('unavailable', `${method} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#ws.send(JSON.stringify({ t: 'req', id, method, params }));
    });
  }

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    let raw: unknown;
    try {
      raw = isBinary ? undefined : JSON.parse(rawText(data));
    } catch {
      raw = undefined;
    }
    const decoded = decodeRpcFrame(raw);
    if (!decoded.ok) {
      this.close('invalid_frame', describe(decoded.errors));
      return;
    }
    const frame = decoded.value;
    if (!this.#authenticated && (frame.t !== 'req' || frame.method !== this.#opts.firstMethod)) {
      this.close('invalid_frame', `expected ${this.#opts.firstMethod ?? ''} first`);
      return;
    }
    this.#dispatch(frame);
  }

  #dispatch(frame: RpcFrame): void {
    switch (frame.t) {
      case 'res': {
        const p = this.#pending.get(frame.id);
        if (p === undefined) return;
        this.#pending.delete(frame.id);
        clearTimeout(p.timer);
        if (frame.ok) p.resolve(frame.result);
        else {
          const code = frame.error?.code ?? 'internal';
          p.reject(
            new MeshregError(
              ERROR_CODES.has(code) ? (code as ErrorCode) : 'internal',
              frame.error?.message ?? '',
            ),
          );
        }
        return;
      }
      case 'req':
        void this.#answer(frame.id, frame.method, frame.params);
        return;
      case 'evt': {
        const h = this.#events.get(frame.name);
        if (h === undefined) return;
        try {
          h(frame.payload);
        } catch (err) {
          this.#log.error('event handler failed', { event: frame.name, err });
        }
        return;
      }
      default: {
        const never: never = frame;
        throw new Error(`unknown frame ${String(never)}`);
      }
    }
  }

  async #answer(id: number, method: string, params: unknown): Promise<void> {
    const h = this.#handlers.get(method);
    let reply: unknown;
    try {
      if (h === undefined) throw new MeshregError('not_found', `unknown method ${method}`);
      reply = { t: 'res', id, ok: true, result: (await h(params)) ?? null };
    } catch (err) {
      const e =
        err instanceof MeshregError ? err : new MeshregError('internal', 'internal error', { cause: err });
      if (e.code === 'internal') this.#log.error('link handler failed', { method, err });
      reply = { t: 'res', id, ok: false, error: { code: e.code, message: e.message } };
    }
    if (this.isOpen) this.#ws.send(JSON.stringify(reply));
  }
}

function rawText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

/** Decodes params or throws `invalid_argument` naming every bad field (for handlers). */
export function params<T>(raw: unknown, decode: (raw: unknown) => Decoded<T>): T {
  const d = decode(raw);
  if (!d.ok) throw new MeshregError('invalid_argument', describe(d.errors), { fields: d.errors });
  return d.value;
}
