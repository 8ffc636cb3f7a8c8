/**
 * A server's outgoing link to another server (meta, or a data server): connects, says `hello`,
 * and reconnects with the shared jittered backoff until stopped. The owner sets handlers in `setup`.
 *
 * States: idle → connecting → hello → open → backoff → connecting … → closed. Every transition goes
 * through {@link LinkClient.#to}, which checks the from-state, logs `A -> B` at debug level and runs
 * the entry action. A failure moves on to the next URL of the list after a delay that grows per
 * failure; the delay resets only once a hello was accepted.
 *
 * With TLS configured, every link is `wss://` and verifies the server (CA and host name) while
 * presenting this process's certificate; a `ws://` URL is refused, never dialled in plain text.
 */
import WebSocket from 'ws';
import { FATAL_CLOSE_CODES } from '../../proto/errors.js';
import { Backoff } from '../../proto/runtime/backoff.js';
import type { LinkSocket } from '../../proto/runtime/link-socket.js';
import type { Logger } from '../../proto/runtime/log.js';
import { TLS_ENV } from '../../proto/runtime/tls-config.js';
import type { TlsSource } from '../../proto/runtime/tls.js';
import { HELLO_METHOD, type LinkHello } from '../../proto/rpc.js';
import { RpcPeer } from './rpc-peer.js';
import { PROCESS_NONCE } from './local-process.js';

/** Reconnect delays: the first after a failure and the cap; each failure doubles it, half of it jittered. */
export interface LinkRetry {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** What a new socket is opened with. */
export interface LinkSocketOptions {
  /** Largest frame accepted from the peer. */
  readonly maxPayload: number;
  /** Longest wait for the WebSocket handshake. */
  readonly handshakeTimeout: number;
}

/** Opens a socket to `url`, still connecting; it emits `open` once the handshake is done. */
export type LinkSocketFactory = (url: string, opts: LinkSocketOptions) => LinkSocket;

/** The default factory: a `ws` WebSocket without compression. */
export const wsSocket: LinkSocketFactory = (url, opts) =>
  new WebSocket(url, { ...opts, perMessageDeflate: false });

/**
 * The factory of a process with TLS settings: `wss://` with its CA, certificate and server-name
 * check; a plaintext URL throws (the link retries it like any failed connection, and logs why).
 */
export function tlsSocket(tls: TlsSource): LinkSocketFactory {
  return (url, opts) => {
    if (!/^wss:\/\//i.test(url))
      throw new Error(`refusing plain-text link ${url}: TLS is configured (${TLS_ENV.cert}, ${TLS_ENV.ca})`);
    return new WebSocket(url, { ...opts, ...tls.clientOptions(), perMessageDeflate: false });
  };
}

export interface LinkClientOptions {
  /** One URL, or several comma-separated: each failed connection moves on to the next. */
  readonly url: string;
  readonly hello: LinkHello;
  readonly callTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly retry: LinkRetry;
  readonly logger: Logger;
  /** Opens the sockets (default {@link wsSocket}, or {@link tlsSocket} with `tls`); tests pass an in-memory pair. */
  readonly connect?: LinkSocketFactory;
  /** The process's TLS settings, used when `connect` is not given. */
  readonly tls?: TlsSource | undefined;
  /** Random source of the backoff's jitter (default `Math.random`). */
  readonly random?: () => number;
}

export type LinkClientState = 'idle' | 'connecting' | 'hello' | 'open' | 'backoff' | 'closed';

const ALLOWED: Readonly<Record<LinkClientState, readonly LinkClientState[]>> = {
  idle: ['connecting', 'closed'],
  connecting: ['hello', 'backoff', 'closed'],
  hello: ['open', 'backoff', 'closed'],
  open: ['backoff', 'closed'],
  backoff: ['connecting', 'closed'],
  closed: [],
};

/**
 * `setup` runs on every new socket before its hello, so handlers exist before the first event can
 * arrive; `ready` runs once the hello was accepted; `state` sees every state as it is entered.
 */
export interface LinkCallbacks {
  setup(peer: RpcPeer): void;
  ready?(peer: RpcPeer): void;
  state?(state: LinkClientState): void;
}

export class LinkClient {
  readonly #opts: LinkClientOptions;
  readonly #cb: LinkCallbacks;
  readonly #urls: readonly string[];
  readonly #backoff: Backoff;
  #state: LinkClientState = 'idle';
  /** The peer of the current socket, whatever its state. */
  #peer: RpcPeer | undefined;
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  /** The last connection error logged: a repeat is not logged again until the link opens. */
  #lastError = '';

  constructor(opts: LinkClientOptions, cb: LinkCallbacks) {
    this.#opts = opts;
    this.#cb = cb;
    this.#urls = opts.url.split(',');
    this.#backoff = new Backoff({ ...opts.retry, multiplier: 2, jitter: 0.5 }, opts.random);
  }

  get url(): string {
    return this.#opts.url;
  }

  get state(): LinkClientState {
    return this.#state;
  }

  /** The connected peer, if the link is up (its hello accepted). */
  get peer(): RpcPeer | undefined {
    return this.#state === 'open' && this.#peer?.isOpen === true ? this.#peer : undefined;
  }

  start(): void {
    this.#to('connecting', 'start');
  }

  /** Closes for good: no more attempts. */
  stop(): void {
    if (this.#state !== 'closed') this.#to('closed', 'stopped');
  }

  #to(next: LinkClientState, reason: string, delayMs = 0): void {
    const from = this.#state;
    if (!ALLOWED[from].includes(next)) throw new Error(`link client: illegal transition ${from} -> ${next}`);
    this.#state = next;
    this.#opts.logger.debug(`${from} -> ${next}`, { url: this.#opts.url, reason });
    // Reported before the entry action, which may itself move on (a socket that cannot be opened).
    this.#cb.state?.(next);
    switch (next) {
      case 'idle':
        break;
      case 'connecting':
        this.#connect();
        break;
      case 'hello':
        if (this.#peer !== undefined) this.#sayHello(this.#peer);
        break;
      case 'open':
        this.#backoff.reset();
        this.#lastError = '';
        if (this.#peer !== undefined) this.#cb.ready?.(this.#peer);
        break;
      case 'backoff':
        this.#peer = undefined;
        this.#timer = setTimeout(() => {
          this.#to('connecting', 'backoff elapsed');
        }, delayMs);
        this.#timer.unref();
        break;
      case 'closed':
        clearTimeout(this.#timer);
        this.#peer?.close('shutting_down', 'stopping');
        break;
      default: {
        const never: never = next;
        throw new Error(`unknown state ${String(never)}`);
      }
    }
  }

  #connect(): void {
    const url = this.#urls[this.#next++ % this.#urls.length] ?? '';
    let socket: LinkSocket;
    try {
      const tls = this.#opts.tls;
      const factory = this.#opts.connect ?? (tls === undefined ? wsSocket : tlsSocket(tls));
      socket = factory(url, {
        maxPayload: this.#opts.maxFrameBytes,
        handshakeTimeout: this.#opts.callTimeoutMs,
      });
    } catch (err) {
      // A malformed URL throws at once; it is retried like any failed connection.
      this.#opts.logger.warn('link could not open a socket', { url, err });
      this.#to('backoff', 'socket not opened', this.#backoff.next());
      return;
    }
    // RpcPeer reads no more of the socket than LinkSocket declares (its parameter type says so once
    // it takes a LinkSocket; until then the socket is passed as the ws class it was written for).
    const peer = new RpcPeer(socket, {
      callTimeoutMs: this.#opts.callTimeoutMs,
      logger: this.#opts.logger,
      pageBytes: Math.floor(this.#opts.maxFrameBytes / 2),
    });
    this.#peer = peer;
    this.#cb.setup(peer);
    socket.on('error', (err) => {
      // Says why a link does not come up (a refused certificate, a wrong host name), once per cause.
      if (this.#state === 'open' || err.message === this.#lastError) return;
      this.#lastError = err.message;
      this.#opts.logger.warn('link could not connect', { url, err: err.message });
    });
    socket.once('open', () => {
      if (this.#peer === peer && this.#state === 'connecting') this.#to('hello', `connected to ${url}`);
    });
    void peer.closed.then(({ code, reason }) => {
      if (this.#peer !== peer || this.#state === 'closed') return;
      this.#onClosed(code, reason);
    });
  }

  #sayHello(peer: RpcPeer): void {
    const said = peer.call(HELLO_METHOD, { ...this.#opts.hello, process: PROCESS_NONCE });
    said.then(
      () => {
        if (this.#peer === peer && this.#state === 'hello') this.#to('open', 'hello accepted');
      },
      (err: unknown) => {
        this.#opts.logger.warn('link hello refused', { url: this.#opts.url, err });
        peer.terminate();
      },
    );
  }

  #onClosed(code: number, reason: string): void {
    const wasOpen = this.#state === 'open';
    // A wrong token or protocol version is not fixed by retrying soon.
    const delay = FATAL_CLOSE_CODES.has(code) ? this.#backoff.max() : this.#backoff.next();
    if (wasOpen) this.#opts.logger.info('link lost', { url: this.#opts.url, code, reason, retryInMs: delay });
    this.#to('backoff', `closed ${String(code)} ${reason}`, delay);
  }
}
