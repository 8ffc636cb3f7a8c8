/**
 * Requests, responses and events over one socket, in both directions: the transport of every link
 * between servers. Methods and events are the typed definitions of a link's contract in `proto/`
 * (`DATA_LINK.publish`, `META_LINK.table`, ...): the peer decodes params before a handler sees them,
 * results before a caller does, and payloads before a listener does. A handler's MeshregError
 * travels back as its code, anything else as `internal`.
 */
import { ERROR_TABLE, MeshregError, closeReason, type ErrorCode } from '../../proto/errors.js';
import {
  PAGE_METHOD,
  decodePage,
  decodeRpcFrame,
  type Decoder,
  type PagedMethod,
  type Page,
  type RpcEventDef,
  type RpcFrame,
  type RpcMethod,
} from '../../proto/rpc.js';
import { SOCKET_OPEN, frameText, type LinkSocket, type RawFrame } from '../../proto/runtime/link-socket.js';
import type { Logger } from '../../proto/runtime/log.js';
import { describe, type Decoded } from '../../proto/validate.js';
import { LogBudget } from './log-budget.js';
import { Pager } from './pager.js';

export interface RpcPeerOptions {
  readonly callTimeoutMs: number;
  readonly logger: Logger;
  /** JSON bytes per page of a paged result: half the link's frame limit leaves room for the envelope. */
  readonly pageBytes: number;
  /**
   * When set, the first frame must be a request of this method (the hello), with valid params:
   * anything else fails the link. The owner calls {@link RpcPeer.authenticated} once it is accepted.
   */
  readonly firstMethod?: RpcMethod<unknown, unknown>;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/** A served method: decodes the raw params into the call of its implementation, or their errors. */
type Served = (raw: unknown) => Decoded<() => unknown>;

const ERROR_CODES = new Set(Object.keys(ERROR_TABLE));

export class RpcPeer {
  readonly #ws: LinkSocket;
  readonly #opts: RpcPeerOptions;
  readonly #handlers = new Map<string, Served>();
  readonly #events = new Map<string, (payload: unknown) => void>();
  readonly #pending = new Map<number, Pending>();
  readonly #log: LogBudget;
  readonly #pager: Pager;
  #nextId = 1;
  #closed = false;
  /** Set by {@link close}: from then on, frames are dropped unread and nothing more is logged for them. */
  #failed = false;
  #authenticated: boolean;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(ws: LinkSocket, opts: RpcPeerOptions) {
    this.#ws = ws;
    this.#opts = opts;
    this.#log = new LogBudget(opts.logger);
    this.#authenticated = opts.firstMethod === undefined;
    this.#pager = new Pager({ pageBytes: opts.pageBytes, ttlMs: opts.callTimeoutMs * 2, maxOpen: 16 });
    this.handle(PAGE_METHOD, (p) => this.#pager.next(p.cursor));
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
    return !this.#closed && this.#ws.readyState === SOCKET_OPEN;
  }

  /** The budgeted logger of this link (a flood from one peer writes a few lines, then a count). */
  get log(): LogBudget {
    return this.#log;
  }

  /**
   * Serves `method`: `impl` gets decoded params; bad params are answered `invalid_argument` naming
   * every bad field (on the first request of a link that demands one, they fail the link instead).
   */
  handle<P, R>(
    method: RpcMethod<P, R>,
    impl: (params: NoInfer<P>) => NoInfer<R> | Promise<NoInfer<R>>,
  ): this {
    this.#handlers.set(method.name, (raw) => {
      const p = method.params(raw);
      return p.ok ? { ok: true, value: () => impl(p.value) } : p;
    });
    return this;
  }

  /**
   * Serves `method` as a paged result: `produce` returns the whole list once, the caller receives it
   * in pages of bounded size ({@link callPaged} on the other side).
   */
  handlePaged<P, I>(method: PagedMethod<P, I>, produce: (params: NoInfer<P>) => readonly NoInfer<I>[]): this {
    const first: RpcMethod<P, Page<unknown>> = { ...method, result: pageOf(method.item) };
    return this.handle(first, (p) => this.#pager.first(produce(p)));
  }

  /** Marks the hello as accepted: requests of any method are served from now on. */
  authenticated(): void {
    this.#authenticated = true;
  }

  /** Listens to `event`; a payload that does not decode is logged (within the budget) and dropped. */
  on<T>(event: RpcEventDef<T>, listener: (payload: NoInfer<T>) => void): this {
    this.#events.set(event.name, (raw) => {
      const d = event.decode(raw);
      if (d.ok) listener(d.value);
      else this.#log.warn('bad event payload; dropped', { event: event.name, errors: describe(d.errors) });
    });
    return this;
  }

  /** Calls `method` on the peer; a result that does not decode rejects `invalid_frame`. */
  async call<P, R>(method: RpcMethod<P, R>, params: NoInfer<P>, timeoutMs?: number): Promise<R> {
    return decodeResult(method.name, method.result, await this.#callRaw(method.name, params, timeoutMs));
  }

  /** Calls a paged `method` and gathers every page, each item decoded by the method's item decoder. */
  async callPaged<P, I>(method: PagedMethod<P, I>, params: NoInfer<P>, timeoutMs?: number): Promise<I[]> {
    const decode = pageOf(method.item);
    const out: I[] = [];
    let page = decodeResult(method.name, decode, await this.#callRaw(method.name, params, timeoutMs));
    for (;;) {
      out.push(...page.items);
      if (page.cursor === undefined) return out;
      const next = await this.#callRaw(PAGE_METHOD.name, { cursor: page.cursor }, timeoutMs);
      page = decodeResult(method.name, decode, next);
    }
  }

  /** Sends `event` with `payload` (dropped when the link is not open: events are not queued). */
  emit<T>(event: RpcEventDef<T>, payload: NoInfer<T>): void {
    if (this.isOpen) this.#ws.send(JSON.stringify({ t: 'evt', name: event.name, payload }));
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

  #onMessage(data: RawFrame, isBinary: boolean): void {
    let raw: unknown;
    try {
      raw = isBinary ? undefined : JSON.parse(frameText(data));
    } catch {
      raw = undefined;
    }
    const decoded = decodeRpcFrame(raw);
    if (!decoded.ok) {
      this.close('invalid_frame', describe(decoded.errors));
      return;
    }
    const frame = decoded.value;
    const first = this.#opts.firstMethod?.name;
    if (!this.#authenticated && (frame.t !== 'req' || frame.method !== first)) {
      this.close('invalid_frame', `expected ${first ?? ''} first`);
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
        else p.reject(remoteError(frame.error));
        return;
      }
      case 'req':
        void this.#answer(frame.id, frame.method, frame.params);
        return;
      case 'evt': {
        const listener = this.#events.get(frame.name);
        if (listener === undefined) return;
        try {
          listener(frame.payload);
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
    let reply: unknown;
    try {
      const run = this.#decodeParams(method, params);
      reply = { t: 'res', id, ok: true, result: (await run()) ?? null };
    } catch (err) {
      const e =
        err instanceof MeshregError ? err : new MeshregError('internal', 'internal error', { cause: err });
      if (e.code === 'internal') this.#log.error('link handler failed', { method, err });
      reply = { t: 'res', id, ok: false, error: { code: e.code, message: e.message } };
    }
    if (this.isOpen) this.#ws.send(JSON.stringify(reply));
  }

  /** The call of `method`'s implementation with decoded params; throws the error to answer instead. */
  #decodeParams(method: string, params: unknown): () => unknown {
    const served = this.#handlers.get(method);
    if (served === undefined) throw new MeshregError('not_found', `unknown method ${method}`);
    const run = served(params);
    if (run.ok) return run.value;
    if (this.#authenticated)
      throw new MeshregError('invalid_argument', describe(run.errors), { fields: run.errors });
    // A bad first request (the hello) fails the link, after its answer is written.
    const err = new MeshregError('invalid_frame', `bad ${method}: ${describe(run.errors)}`);
    setImmediate(() => {
      this.close(err.code, err.message);
    });
    throw err;
  }
}

/** The decoder of one page of `item`s. */
function pageOf<I>(item: Decoder<I>): Decoder<Page<I>> {
  return (raw) => decodePage(raw, item);
}

function decodeResult<R>(method: string, decode: Decoder<R>, raw: unknown): R {
  const d = decode(raw);
  if (!d.ok) throw new MeshregError('invalid_frame', `bad ${method} result: ${describe(d.errors)}`);
  return d.value;
}

/** A peer's error answer as a MeshregError of its code; a code this side does not know is `internal`. */
function remoteError(error: { readonly code: string; readonly message: string } | undefined): MeshregError {
  const code = error?.code ?? 'internal';
  return new MeshregError(ERROR_CODES.has(code) ? (code as ErrorCode) : 'internal', error?.message ?? '');
}
