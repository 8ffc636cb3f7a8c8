/**
 * A server's outgoing link to another server (meta, or a data server): connects, says `hello`,
 * and reconnects with jittered backoff until stopped. The owner sets handlers in `onConnect`.
 */
import WebSocket from 'ws';
import type { Logger } from '../../proto/runtime/log.js';
import { HELLO_METHOD, type LinkHello } from '../../proto/rpc.js';
import { RpcPeer } from './rpc-peer.js';

export interface LinkClientOptions {
  /** One URL, or several comma-separated: each failed connection moves on to the next. */
  readonly url: string;
  readonly hello: LinkHello;
  readonly callTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  readonly logger: Logger;
}

/**
 * `setup` runs on every new socket before its hello, so handlers exist before the first event can
 * arrive; `ready` runs once the hello was accepted.
 */
export interface LinkCallbacks {
  setup(peer: RpcPeer): void;
  ready?(peer: RpcPeer): void;
}

export class LinkClient {
  readonly #opts: LinkClientOptions;
  readonly #cb: LinkCallbacks;
  readonly #onDisconnect: () => void;
  #peer: RpcPeer | undefined;
  #stopped = false;
  #attempt = 0;
  #next = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: LinkClientOptions, cb: LinkCallbacks, onDisconnect: () => void = () => undefined) {
    this.#opts = opts;
    this.#cb = cb;
    this.#onDisconnect = onDisconnect;
  }

  get url(): string {
    return this.#opts.url;
  }

  /** The connected peer, if the link is up. */
  get peer(): RpcPeer | undefined {
    return this.#peer?.isOpen === true ? this.#peer : undefined;
  }

  start(): void {
    this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#peer?.close('shutting_down', 'stopping');
  }

  #connect(): void {
    if (this.#stopped) return;
    const urls = this.#opts.url.split(',');
    const url = urls[this.#next++ % urls.length] ?? '';
    const ws = new WebSocket(url, {
      maxPayload: this.#opts.maxFrameBytes,
      perMessageDeflate: false,
      handshakeTimeout: this.#opts.callTimeoutMs,
    });
    const peer = new RpcPeer(ws, {
      callTimeoutMs: this.#opts.callTimeoutMs,
      logger: this.#opts.logger,
      pageBytes: Math.floor(this.#opts.maxFrameBytes / 2),
    });
    this.#cb.setup(peer);
    ws.once('open', () => {
      peer.call(HELLO_METHOD, this.#opts.hello).then(
        () => {
          this.#attempt = 0;
          this.#peer = peer;
          this.#cb.ready?.(peer);
        },
        (err: unknown) => {
          this.#opts.logger.warn('link hello refused', { url: this.#opts.url, err });
          peer.terminate();
        },
      );
    });
    void peer.closed.then(() => {
      const wasUp = this.#peer === peer;
      if (wasUp) {
        this.#peer = undefined;
        this.#onDisconnect();
      }
      if (this.#stopped) return;
      const base = Math.min(this.#opts.retryMaxMs, this.#opts.retryMinMs * 2 ** this.#attempt++);
      this.#timer = setTimeout(
        () => {
          this.#connect();
        },
        base / 2 + Math.random() * (base / 2),
      );
      this.#timer.unref();
    });
  }
}
