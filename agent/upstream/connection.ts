/**
 * The agent's one WebSocket to the control plane, for the whole host.
 *
 * States: idle → connecting → open → backoff → connecting … → closed. Every transition goes through
 * {@link UpstreamLink.#to}, which checks the from-state, logs `A -> B`, and runs the entry action.
 * On failure the link moves to the next session server in its list after a jittered backoff; the
 * backoff resets only after a good handshake (a `welcome`).
 *
 * The link speaks the newest protocol ({@link PROTOCOL_VERSION}). A session that refuses it in the
 * handshake (close 4002, an older server during a rolling upgrade) is dialled again at once with the
 * previous version, which is then used for that session URL; the version agreed is
 * {@link UpstreamLink.protocolVersion}.
 *
 * A `slow_down` from the session (protocol 3) is not a failure: the link stays open, its liveness
 * timeout is extended by the pause asked (clamped by the decoder), and the owner defers its own
 * non-urgent sends. Silence is judged in live time, so a stall of this process is not the session's.
 *
 * With TLS settings the link is `wss://` only: the session's certificate is verified (CA and host
 * name) and the agent's own is presented for mTLS; a `ws://` URL is refused, never dialled in plain
 * text. Why a connection fails (a certificate refused either way) is logged once per cause.
 */
import {
  DATACENTERS_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  decodeSessionFrame,
  parseJsonFrame,
  type AgentFrame,
  type Hello,
  type SessionFrame,
  type Welcome,
} from '../../proto/agent-link.js';
import { ERROR_TABLE, FATAL_CLOSE_CODES } from '../../proto/errors.js';
import { SOCKET_OPEN, frameText, type LinkSocket } from '../../proto/runtime/link-socket.js';
import type { Logger } from '../../proto/runtime/log.js';
import { describe } from '../../proto/validate.js';
import { Backoff, type BackoffOptions } from '../../proto/runtime/backoff.js';
import { loopMonitor } from '../../proto/runtime/loop-monitor.js';
import type { TlsConfig } from '../../proto/runtime/tls-config.js';
import { TlsSource } from '../../proto/runtime/tls.js';
import { tlsSocketFactory, wsSocketFactory, type SocketFactory } from './socket-factory.js';
import { Liveness } from './liveness.js';

export {
  tlsSocketFactory,
  wsSocketFactory,
  type ConnectOptions,
  type SocketFactory,
} from './socket-factory.js';

const UNSUPPORTED_PROTOCOL = ERROR_TABLE.unsupported_protocol.ws;
const WRONG_DATACENTER = ERROR_TABLE.wrong_datacenter.ws;

/** A close that retrying at once cannot cure ({@link FATAL_CLOSE_CODES}), as the agent reports it. */
export interface FatalClose {
  readonly code: number;
  /** The session's close reason (it names both data centers for 4015). */
  readonly reason: string;
  readonly url: string;
  /** Wall time of the first such close in a row. */
  readonly at: number;
}

export type LinkState = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

const ALLOWED: Readonly<Record<LinkState, readonly LinkState[]>> = {
  idle: ['connecting', 'closed'],
  connecting: ['open', 'backoff', 'closed'],
  open: ['backoff', 'closed'],
  backoff: ['connecting', 'closed'],
  closed: [],
};

export interface LinkOptions {
  readonly urls: readonly string[];
  readonly nodeId: string;
  readonly nodeName: string;
  readonly token: string;
  /**
   * The agent's data center, sent in the hello (protocol 4 and later) so that a session of another
   * one refuses it (close 4015); undefined: not sent.
   */
  readonly datacenter?: string | undefined;
  readonly connectTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly backoff: BackoffOptions;
  readonly logger: Logger;
  /** How sockets are opened; `ws` by default (tests pass an in-memory pair). */
  readonly connect?: SocketFactory;
  /** The backoff's random source (jitter); `Math.random` by default. */
  readonly random?: () => number;
  /** TLS settings of the agent (`agent/config.ts`); none: plain `ws://`. Used when `connect` is not given. */
  readonly tls?: TlsConfig | undefined;
}

/** What the link reports to its owner. */
export interface LinkHandler {
  /** The handshake succeeded; the owner re-sends its whole state now. */
  onOpen(welcome: Welcome): void;
  onFrame(frame: SessionFrame): void;
  /** Any state change, for status reporting (offline mode, metrics). */
  onState(state: LinkState): void;
}

export class UpstreamLink {
  #state: LinkState = 'idle';
  #ws: LinkSocket | undefined;
  #urls: string[];
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  #liveness: Liveness | undefined;
  #sessionId = '';
  /** The protocol version the last dial spoke, and the version agreed once open. */
  #protocol = PROTOCOL_VERSION;
  /** Session URLs that refused {@link PROTOCOL_VERSION}: the version to speak to each instead. */
  readonly #fallback = new Map<string, number>();
  readonly #backoff: Backoff;
  readonly #opts: LinkOptions;
  readonly #handler: LinkHandler;
  readonly #log: Logger;
  readonly #tls: TlsSource | undefined;
  readonly #dial: SocketFactory;
  /** The last connection error logged: a repeat is not logged again until the link opens. */
  #lastError = '';
  /** The last fatal close (a refusal that retrying cannot cure) until a handshake succeeds. */
  #fatal: FatalClose | undefined;

  /** Throws, naming the variables, when the TLS files cannot be used (the agent does not start). */
  constructor(opts: LinkOptions, handler: LinkHandler) {
    if (opts.urls.length === 0) throw new Error('the upstream link needs at least one session URL');
    this.#opts = opts;
    const tls = opts.tls === undefined ? undefined : TlsSource.load(opts.tls);
    if (tls?.ok === false) throw tls.error;
    this.#tls = tls?.value;
    this.#dial = opts.connect ?? (this.#tls === undefined ? wsSocketFactory : tlsSocketFactory(this.#tls));
    this.#handler = handler;
    this.#urls = [...opts.urls];
    this.#backoff = new Backoff(opts.backoff, opts.random);
    this.#log = opts.logger.child({ component: 'upstream' });
  }

  get state(): LinkState {
    return this.#state;
  }

  /** The session server currently connected, or '' when not open. */
  get sessionId(): string {
    return this.#state === 'open' ? this.#sessionId : '';
  }

  /**
   * Why the last session refused this agent for good (a wrong token, protocol or data center), until
   * a later handshake succeeds; the agent still retries, at the longest backoff.
   */
  get fatalClose(): FatalClose | undefined {
    return this.#fatal;
  }

  /** The protocol version spoken on the current (or last) connection. */
  get protocolVersion(): number {
    return this.#protocol;
  }

  get url(): string {
    return this.#urls[(this.#next + this.#urls.length - 1) % this.#urls.length] ?? '';
  }

  start(): void {
    // The liveness clock (live time) needs this process's loop monitor running.
    loopMonitor.start();
    this.#tls?.watch(this.#log);
    this.#to('connecting', 'start');
  }

  /** Sends a frame if the link is open; false otherwise (the owner re-sends on the next open). */
  send(frame: AgentFrame): boolean {
    if (this.#state !== 'open' || this.#ws === undefined) return false;
    this.#ws.send(JSON.stringify(frame));
    return true;
  }

  /** Closes for good. */
  stop(): void {
    if (this.#state === 'closed') return;
    if (this.#state !== 'idle') loopMonitor.stop();
    this.#tls?.close();
    this.#to('closed', 'stopped');
  }

  #to(next: LinkState, reason: string, delayMs = 0): void {
    const from = this.#state;
    if (!ALLOWED[from].includes(next)) {
      throw new Error(`upstream link: illegal transition ${from} -> ${next}`);
    }
    this.#state = next;
    this.#log.debug(`${from} -> ${next}`, { reason });
    switch (next) {
      case 'connecting':
        this.#connect();
        break;
      case 'open':
        this.#backoff.reset();
        this.#lastError = '';
        this.#fatal = undefined;
        break;
      case 'backoff':
        this.#teardown();
        this.#timer = setTimeout(() => {
          this.#to('connecting', 'backoff elapsed');
        }, delayMs);
        break;
      case 'closed':
        clearTimeout(this.#timer);
        this.#teardown(1000, 'agent stopping');
        break;
      case 'idle':
        break;
      default: {
        const never: never = next;
        throw new Error(`unknown state ${String(never)}`);
      }
    }
    this.#handler.onState(next);
  }

  #connect(): void {
    const url = this.#urls[this.#next % this.#urls.length] ?? '';
    this.#next++;
    let ws: LinkSocket;
    try {
      ws = this.#dial(url, {
        handshakeTimeoutMs: this.#opts.connectTimeoutMs,
        maxFrameBytes: this.#opts.maxFrameBytes,
      });
    } catch (err) {
      // A URL that cannot be dialled (malformed, or plain text under TLS) fails like a refused connection.
      this.#connectError(url, err);
      // After this transition has been reported: the owner sees connecting, then backoff.
      queueMicrotask(() => {
        if (this.#state === 'connecting' && this.#ws === undefined)
          this.#to('backoff', 'socket not opened', this.#backoff.next());
      });
      return;
    }
    this.#ws = ws;
    const protocolVersion = this.#fallback.get(url) ?? PROTOCOL_VERSION;
    this.#protocol = protocolVersion;
    const welcomeTimer = setTimeout(() => {
      this.#fail(ws, 'no welcome in time');
    }, this.#opts.connectTimeoutMs);
    ws.on('open', () => {
      const hello: Hello = {
        type: 'hello',
        protocolVersion,
        nodeId: this.#opts.nodeId,
        nodeName: this.#opts.nodeName,
        token: this.#opts.token,
        // An older session would not know the field: sent from the version that defines it.
        ...(this.#opts.datacenter !== undefined && protocolVersion >= DATACENTERS_PROTOCOL_VERSION
          ? { datacenter: this.#opts.datacenter }
          : {}),
      };
      ws.send(JSON.stringify(hello));
    });
    ws.on('message', (data, isBinary) => {
      if (ws !== this.#ws) return;
      this.#liveness?.heard();
      const raw = isBinary ? undefined : parseJsonFrame(frameText(data));
      const decoded = decodeSessionFrame(raw);
      if (!decoded.ok) {
        this.#log.warn('invalid frame from session', { error: describe(decoded.errors) });
        ws.close(4000, 'invalid_frame: bad frame from session');
        return;
      }
      const frame = decoded.value;
      if (frame.type === 'welcome') {
        clearTimeout(welcomeTimer);
        if (this.#state !== 'connecting') return;
        this.#onWelcome(ws, frame);
        return;
      }
      if (this.#state !== 'open') return;
      if (frame.type === 'slow_down') this.#liveness?.extend(frame.retryAfterMs);
      this.#handler.onFrame(frame);
    });
    ws.on('close', (code, reason) => {
      clearTimeout(welcomeTimer);
      if (ws !== this.#ws) return;
      this.#onClosed(code, reason.toString(), url);
    });
    ws.on('error', (err) => {
      if (this.#state === 'connecting') this.#connectError(url, err);
      else this.#log.debug('upstream socket error', { url, err });
    });
  }

  /** Logs why a dial failed (a certificate refused, a wrong host name), once per cause in a row. */
  #connectError(url: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (message === this.#lastError) return;
    this.#lastError = message;
    // A TLS server that refuses the client's certificate may just close: say where to look.
    const hint =
      this.#tls !== undefined && message === 'socket hang up'
        ? {
            hint: "the session closed the TLS connection: see its log for why it refused this agent's certificate",
          }
        : {};
    this.#log.warn('cannot connect to session', { url, err: message, ...hint });
  }

  #onWelcome(ws: LinkSocket, welcome: Welcome): void {
    this.#sessionId = welcome.sessionId;
    this.#protocol = Math.min(this.#protocol, welcome.protocolVersion);
    for (const u of welcome.sessions) if (!this.#urls.includes(u)) this.#urls.push(u);
    this.#liveness = new Liveness(
      {
        sendPing: () => {
          this.send({ type: 'ping', sentAt: Date.now() });
        },
        disconnect: (reason) => {
          this.#fail(ws, reason);
        },
      },
      welcome.pingIntervalMs,
      welcome.pingIntervalMs * 3,
    );
    // After a failure the link moves on to the next candidate, which spreads reconnects when a session dies.
    this.#to('open', `welcome from ${welcome.sessionId}`);
    this.#log.info('connected to session', { sessionId: welcome.sessionId, url: this.url });
    this.#handler.onOpen(welcome);
  }

  #fail(ws: LinkSocket, reason: string): void {
    if (ws !== this.#ws) return;
    this.#log.warn('upstream link failed', { reason });
    ws.terminate();
  }

  #onClosed(code: number, reason: string, url: string): void {
    if (this.#state === 'closed') return;
    if (code === UNSUPPORTED_PROTOCOL && this.#state === 'connecting' && this.#protocol > 1) {
      const older = this.#protocol - 1;
      this.#fallback.set(url, older);
      this.#log.warn('session refused the protocol; trying the previous version', {
        url,
        refused: this.#protocol,
        next: older,
      });
      // The same session again, now: nothing failed but the version.
      this.#next--;
      this.#to('backoff', `protocol ${this.#protocol} refused`, 0);
      return;
    }
    const fatal = FATAL_CLOSE_CODES.has(code);
    const delay = fatal ? this.#backoff.max() : this.#backoff.next();
    if (!fatal) this.#log.info('upstream link closed', { code, reason, retryInMs: delay });
    else if (this.#fatal?.code !== code || this.#fatal.reason !== reason) {
      // Logged once per cause: retrying at the longest backoff repeats it until an operator acts.
      this.#fatal = { code, reason, url, at: Date.now() };
      this.#log.error('upstream link refused', {
        code,
        reason,
        retryInMs: delay,
        ...(code === WRONG_DATACENTER && this.#opts.datacenter !== undefined
          ? { datacenter: this.#opts.datacenter }
          : {}),
      });
    }
    this.#to('backoff', `closed ${code} ${reason}`, delay);
  }

  #teardown(code?: number, reason?: string): void {
    this.#liveness?.stop();
    this.#liveness = undefined;
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws === undefined) return;
    ws.removeAllListeners('message');
    ws.on('error', () => undefined);
    if (code !== undefined && ws.readyState === SOCKET_OPEN) ws.close(code, reason);
    else ws.terminate();
  }
}
