/**
 * One agent's WebSocket on a session server: handshake, frame validation, rate limiting, and the
 * dispatch of each frame to the registrations and subscriptions it affects.
 *
 * Bad input is contained here: an invalid frame closes this connection with a code and a reason
 * and touches nothing else.
 */
import type WebSocket from 'ws';
import {
  AGENT_LINK_NAME,
  PROTOCOL_VERSION,
  decodeAgentFrame,
  parseJsonFrame,
  type AgentFrame,
  type Confirm,
  type Hello,
  type Welcome,
} from '../../proto/agent-link.js';
import { ERROR_TABLE, closeReason, type ErrorCode } from '../../proto/errors.js';
import { protocolMismatch } from '../../proto/rpc.js';
import { describe } from '../../proto/validate.js';
import type { Logger } from '../../proto/runtime/log.js';
import { LogBudget } from '../link/log-budget.js';
import { closeOversizedWithReason, setMaxPayload } from '../link/ws-limits.js';
import { CATALOG_KEY, type PushTarget } from './push-dispatcher.js';
import { TokenBucket } from './rate-limit.js';

export interface ConnectionLimits {
  readonly helloTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly maxFramesPerSec: number;
  readonly frameBurst: number;
}

/** What a connection needs from its session server. */
export interface ConnectionHost {
  readonly sessionId: string;
  readonly logger: Logger;
  readonly limits: ConnectionLimits;
  /** Largest frame once the hello is accepted (before it, the server's small hello limit applies). */
  readonly maxFrameBytes: number;
  tokenMatches(token: string): boolean;
  sessions(): string[];
  /** Checked after the token: a refusal (draining, switched off) closes the connection with its code. */
  admit(conn: AgentConnection): { code: ErrorCode; reason: string } | undefined;
  /** Called once the hello is accepted; the host may close an older connection of the same node. */
  adopt(conn: AgentConnection): void;
  publish(conn: AgentConnection, frame: Extract<AgentFrame, { type: 'publish' }>): Promise<Confirm>;
  unpublish(conn: AgentConnection, frame: Extract<AgentFrame, { type: 'unpublish' }>): Promise<Confirm>;
  /** False when the subscription was refused (the host told the agent why). */
  subscribe(conn: AgentConnection, key: string, knownVersion: number | undefined): boolean;
  unsubscribe(conn: AgentConnection, key: string): void;
  ack(conn: AgentConnection, key: string, version: number): void;
  closed(conn: AgentConnection): void;
}

/**
 * `closing`: {@link AgentConnection.fail} was called; frames still arriving until the peer answers
 * the close (or is cut off) are dropped unread and unlogged.
 */
export type ConnectionState = 'handshake' | 'ready' | 'closing' | 'closed';

export class AgentConnection implements PushTarget {
  readonly id: string;
  readonly remote: string;
  /** The remote IP address (what operator switches match). */
  readonly address: string;
  #state: ConnectionState = 'handshake';
  #hello: Hello | undefined;
  readonly subscriptions = new Set<string>();
  readonly #ws: WebSocket;
  readonly #host: ConnectionHost;
  readonly #bucket: TokenBucket;
  readonly #log: LogBudget;
  /** The hello was accepted (the connection was ready at some point). */
  #welcomed = false;
  #lastSeen = performance.now();
  readonly #timer: NodeJS.Timeout;
  /** Frames are handled one at a time, in order, even when handling awaits the data layer. */
  #queue: Promise<void> = Promise.resolve();

  constructor(id: string, ws: WebSocket, address: string, remotePort: number, host: ConnectionHost) {
    this.id = id;
    this.address = address;
    const remote = `${address}:${remotePort}`;
    this.remote = remote;
    this.#ws = ws;
    this.#host = host;
    this.#log = new LogBudget(host.logger.child({ conn: id, remote }));
    closeOversizedWithReason(ws, (limitBytes) => {
      this.#log.warn('agent frame too large; closed', { limitBytes });
      this.#to('closing');
    });
    this.#bucket = new TokenBucket(host.limits.maxFramesPerSec, host.limits.frameBurst);
    const started = performance.now();
    this.#timer = setInterval(
      () => {
        const now = performance.now();
        if (this.#state === 'handshake' && now - started > host.limits.helloTimeoutMs) {
          this.fail('handshake_timeout', 'no hello received in time');
        } else if (this.#state === 'ready' && now - this.#lastSeen > host.limits.idleTimeoutMs) {
          this.fail('liveness_timeout', 'no frame received within the idle timeout');
        }
      },
      Math.max(10, Math.min(host.limits.helloTimeoutMs, host.limits.idleTimeoutMs) / 4),
    );
    this.#timer.unref();
    ws.on('message', (data, isBinary) => {
      this.#onMessage(data, isBinary);
    });
    ws.on('close', (code, reason) => {
      this.#onClose(code, reason.toString());
    });
    ws.on('error', (err) => {
      this.#log.warn('agent socket error', { err });
    });
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get nodeId(): string | undefined {
    return this.#hello?.nodeId;
  }

  get nodeName(): string | undefined {
    return this.#hello?.nodeName;
  }

  /** Sends a text frame (a string, or one pre-encoded as UTF-8 to be shared by many connections). */
  send(frame: string | Buffer, written?: () => void): void {
    if (this.#state !== 'ready') return;
    this.#ws.send(frame, { binary: false }, written);
  }

  /** Closes this connection with the close code of `code`; later frames are dropped unread. */
  fail(code: ErrorCode, reason: string): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#to('closing');
    this.#log.info('closing agent connection', { code, reason });
    this.#ws.close(ERROR_TABLE[code].ws, closeReason(`${code}: ${reason}`));
    // A peer that does not complete the closing handshake is cut off.
    setTimeout(() => {
      this.#ws.terminate();
    }, 1000).unref();
  }

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#lastSeen = performance.now();
    if (!this.#bucket.take()) {
      this.fail('rate_limited', `more than ${this.#host.limits.maxFramesPerSec} frames/s`);
      return;
    }
    if (isBinary) {
      this.fail('invalid_frame', 'binary frames are not part of the protocol');
      return;
    }
    const text = Array.isArray(data)
      ? Buffer.concat(data).toString('utf8')
      : Buffer.from(data as ArrayBuffer).toString('utf8');
    const raw = parseJsonFrame(text);
    if (raw === undefined) {
      this.fail('invalid_frame', 'frame is not valid JSON');
      return;
    }
    const decoded = decodeAgentFrame(raw);
    if (!decoded.ok) {
      this.fail('invalid_frame', describe(decoded.errors));
      return;
    }
    const frame = decoded.value;
    this.#queue = this.#queue
      .then(() => this.#handle(frame))
      .catch((err: unknown) => {
        this.#log.error('frame handling failed', { type: frame.type, err });
        this.fail('internal', 'internal error');
      });
  }

  async #handle(frame: AgentFrame): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    if (this.#state === 'handshake') {
      if (frame.type !== 'hello') {
        this.fail('invalid_frame', `expected hello, got ${frame.type}`);
        return;
      }
      this.#onHello(frame);
      return;
    }
    switch (frame.type) {
      case 'hello':
        this.fail('invalid_frame', 'hello sent twice');
        return;
      case 'publish':
        this.#ws.send(JSON.stringify(await this.#host.publish(this, frame)));
        return;
      case 'unpublish':
        this.#ws.send(JSON.stringify(await this.#host.unpublish(this, frame)));
        return;
      case 'subscribe':
        for (const s of frame.services) {
          if (this.#host.subscribe(this, s.service, s.knownVersion)) this.subscriptions.add(s.service);
        }
        return;
      case 'unsubscribe':
        for (const s of frame.services) {
          this.subscriptions.delete(s);
          this.#host.unsubscribe(this, s);
        }
        return;
      case 'catalogSubscribe':
        this.subscriptions.add(CATALOG_KEY);
        this.#host.subscribe(this, CATALOG_KEY, frame.knownVersion);
        return;
      case 'ack':
        this.#host.ack(this, frame.service, frame.version);
        return;
      case 'ping':
        this.#ws.send(JSON.stringify({ type: 'pong', sentAt: frame.sentAt }));
        return;
      default: {
        const never: never = frame;
        throw new Error(`unhandled frame ${String(never)}`);
      }
    }
  }

  #onHello(hello: Hello): void {
    const mismatch = protocolMismatch(AGENT_LINK_NAME, hello.protocolVersion, PROTOCOL_VERSION);
    if (mismatch !== undefined) {
      this.fail(mismatch.code, mismatch.message);
      return;
    }
    if (!this.#host.tokenMatches(hello.token)) {
      this.fail('unauthorized', hello.token === '' ? 'missing token' : 'wrong token');
      return;
    }
    this.#hello = hello;
    const refusal = this.#host.admit(this);
    if (refusal !== undefined) {
      this.fail(refusal.code, refusal.reason);
      return;
    }
    this.#to('ready');
    this.#welcomed = true;
    // Authenticated: from the next frame on, the full frame limit applies.
    setMaxPayload(this.#ws, this.#host.maxFrameBytes);
    this.#host.adopt(this);
    const welcome: Welcome = {
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      sessionId: this.#host.sessionId,
      sessions: this.#host.sessions(),
      pingIntervalMs: this.#host.limits.pingIntervalMs,
    };
    this.#ws.send(JSON.stringify(welcome));
    this.#log.info('agent connected', { nodeId: hello.nodeId, nodeName: hello.nodeName });
  }

  #onClose(code: number, reason: string): void {
    clearInterval(this.#timer);
    this.#to('closed');
    if (this.#welcomed) this.#log.info('agent disconnected', { code, reason });
    this.#log.flush();
    this.#host.closed(this);
  }

  /** Every state change: states only move forward (handshake → ready → closing → closed). */
  #to(next: ConnectionState): void {
    if (ORDER[next] <= ORDER[this.#state]) return;
    this.#state = next;
  }
}

const ORDER: Readonly<Record<ConnectionState, number>> = { handshake: 0, ready: 1, closing: 2, closed: 3 };
