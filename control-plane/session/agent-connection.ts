/**
 * One agent's WebSocket on a session server: handshake, frame validation, rate limiting, and the
 * dispatch of each frame to the registrations and subscriptions it affects.
 *
 * Writes (`publish`, `unpublish`) keep their order in their own queue, since each waits for the data
 * layer (seconds during a failover). Everything else is handled as it arrives: a `ping` stuck behind
 * a slow publish would make the agent think the link is dead, and an `ack` stuck there would make
 * the push dispatcher re-send and finally close a healthy connection. Subscriptions do not depend on
 * writes either, and after a reconnect the agent's full sync sends every publish first: queued
 * behind them, its views would wait for the whole re-publication before the first push.
 *
 * Bad input is contained here: an invalid frame closes this connection with a code and a reason
 * and touches nothing else.
 *
 * A slow reader is contained too: the bytes queued for it (the socket's `bufferedAmount` plus the
 * writes it sent that wait in the queue above) are checked after every send, and once more than
 * `maxQueuedBytes` wait ahead of the newest frame the connection is closed with `slow_consumer`
 * (4014): a reader that stops reading holds at most the limit plus one frame. Silence is judged in
 * live time (the loop monitor's `liveNow`, started by each connection while it lives): while this
 * process stalled, the agent's pings sat unread in our buffers, which is not the agent's silence.
 */
import {
  AGENT_LINK_NAME,
  DELTA_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  SLOW_DOWN_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
  decodeAgentFrame,
  parseJsonFrame,
  type AgentFrame,
  type Confirm,
  type Hello,
  type Publish,
  type SlowDown,
  type Unpublish,
  type Welcome,
} from '../../proto/agent-link.js';
import { ERROR_TABLE, closeReason, type ErrorCode } from '../../proto/errors.js';
import { protocolMismatch } from '../../proto/rpc.js';
import { describe } from '../../proto/validate.js';
import { frameText, type RawFrame } from '../../proto/runtime/link-socket.js';
import type { Logger } from '../../proto/runtime/log.js';
import { loopMonitor } from '../../proto/runtime/loop-monitor.js';
import { LogBudget } from '../link/log-budget.js';
import type { AgentTransport } from './agent-transport.js';
import type { PushTarget } from './push-dispatcher.js';
import { TokenBucket } from './rate-limit.js';

export interface ConnectionLimits {
  readonly helloTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly maxFramesPerSec: number;
  readonly frameBurst: number;
  /** Bytes that may wait for a reader before it is closed as a slow consumer; 64 MiB when absent. */
  readonly maxQueuedBytes?: number;
}

/** Default of {@link ConnectionLimits.maxQueuedBytes}. */
export const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;

/** What a connection needs from its session server. */
export interface ConnectionHost {
  readonly sessionId: string;
  readonly logger: Logger;
  readonly limits: ConnectionLimits;
  /** Largest frame once the hello is accepted (before it, the server's small hello limit applies). */
  readonly maxFrameBytes: number;
  /** The `datacenters` frame sent after the welcome (undefined for an agent older than protocol 4). */
  datacentersFrame?(protocolVersion: number): object | undefined;
  /** Checks the hello (token, node name, data center); a refusal closes the connection. */
  authenticate(conn: AgentConnection, hello: Hello): ReturnType<ConnectionHost['admit']>;
  sessions(): string[];
  /** Checked after the token: a refusal (draining, switched off) closes the connection with its code. */
  admit(conn: AgentConnection): { code: ErrorCode; reason: string } | undefined;
  /** Called once the hello is accepted; the host may close an older connection of the same node. */
  adopt(conn: AgentConnection): void;
  publish(conn: AgentConnection, frame: Publish): Promise<Confirm>;
  unpublish(conn: AgentConnection, frame: Unpublish): Promise<Confirm>;
  /** False when the subscription was refused (the host told the agent why). */
  subscribe(conn: AgentConnection, key: string, knownVersion: number | undefined): boolean;
  /** Subscribes to the service catalog (one subscription per connection at most, never refused). */
  subscribeCatalog(conn: AgentConnection, knownVersion: number | undefined): void;
  unsubscribe(conn: AgentConnection, key: string): void;
  ack(conn: AgentConnection, key: string, version: number): void;
  closed(conn: AgentConnection): void;
}

/**
 * `closing`: {@link AgentConnection.fail} was called; frames still arriving until the peer answers
 * the close (or is cut off) are dropped unread and unlogged.
 */
export type ConnectionState = 'handshake' | 'ready' | 'closing' | 'closed';

/** An agent connection: see the file comment for how frames are ordered. */
export class AgentConnection implements PushTarget {
  readonly id: string;
  readonly remote: string;
  /** The remote IP address (what operator switches match). */
  readonly address: string;
  #state: ConnectionState = 'handshake';
  #hello: Hello | undefined;
  /** The services this connection subscribed to (the catalog is not one of them). */
  readonly subscriptions = new Set<string>();
  readonly #transport: AgentTransport;
  readonly #host: ConnectionHost;
  readonly #bucket: TokenBucket;
  readonly #log: LogBudget;
  /** The hello was accepted (the connection was ready at some point). */
  #welcomed = false;
  /** Why this connection was failed (its close code's name), once it was. */
  #failedWith: ErrorCode | undefined;
  /** Live time (see the file comment) of the last frame received; set in the constructor. */
  #lastSeen: number;
  /** Bytes of the writes waiting in {@link AgentConnection.#writes}. */
  #queuedWriteBytes = 0;
  readonly #timer: NodeJS.Timeout;
  /** Publishes and unpublishes are handled one at a time, in order, each awaiting the data layer. */
  #writes: Promise<void> = Promise.resolve();

  constructor(
    id: string,
    transport: AgentTransport,
    address: string,
    remotePort: number,
    host: ConnectionHost,
  ) {
    this.id = id;
    this.address = address;
    const remote = `${address}:${remotePort}`;
    this.remote = remote;
    this.#transport = transport;
    this.#host = host;
    this.#log = new LogBudget(host.logger.child({ conn: id, remote }));
    transport.onOversized((limitBytes) => {
      this.#log.warn('agent frame too large; closed', { limitBytes });
      this.#to('closing');
    });
    this.#bucket = new TokenBucket(host.limits.maxFramesPerSec, host.limits.frameBurst);
    loopMonitor.start();
    this.#lastSeen = loopMonitor.liveNow();
    this.#timer = this.#startTimeouts(host.limits);
    const socket = transport.socket;
    socket.on('message', (data, isBinary) => {
      this.#onMessage(data, isBinary);
    });
    socket.on('close', (code, reason) => {
      this.#onClose(code, reason.toString());
    });
    socket.on('error', (err) => {
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

  /** The protocol version agreed in the hello (the agent's); undefined before it. */
  get protocolVersion(): number | undefined {
    return this.#hello?.protocolVersion;
  }

  /** Whether this agent may be sent `delta` frames (protocol 2 or later). */ get deltas(): boolean {
    return (this.#hello?.protocolVersion ?? 0) >= DELTA_PROTOCOL_VERSION;
  }

  /** Why this connection was closed by the session, if it was. */
  get failedWith(): ErrorCode | undefined {
    return this.#failedWith;
  }

  /** Bytes waiting for this agent: unsent frames plus its writes waiting in the queue. */
  get queuedBytes(): number {
    return this.#transport.socket.bufferedAmount + this.#queuedWriteBytes;
  }

  /** Sends a text frame (a string, or one pre-encoded as UTF-8 to be shared by many connections). */
  send(frame: string | Buffer, written?: () => void): void {
    if (this.#state !== 'ready') return;
    if (typeof frame === 'string') this.#transport.socket.send(frame, written);
    else this.#transport.sendEncoded(frame, written);
    this.#checkQueued(frame.length);
  }

  /** Sends `slow_down` to an agent of protocol 3 or later (older ones would close on it); whether sent. */
  slowDown(retryAfterMs: number, reason: string): boolean {
    if (this.#state !== 'ready' || (this.protocolVersion ?? 0) < SLOW_DOWN_PROTOCOL_VERSION) return false;
    const frame: SlowDown = { type: 'slow_down', retryAfterMs, reason };
    this.#reply(frame);
    return true;
  }

  /** Sends a frame of the session's own (a confirm, a pong, a welcome) and checks the queue. */
  #reply(frame: object): void {
    const text = JSON.stringify(frame);
    this.#transport.socket.send(text);
    this.#checkQueued(text.length);
  }

  /** Closes a reader more than the limit behind, not counting the frame just queued (`latest`). */
  #checkQueued(latest: number): void {
    const max = this.#host.limits.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    const behind = this.queuedBytes - latest;
    if (behind > max && this.#state === 'ready')
      this.fail('slow_consumer', `${behind} bytes queued, over the limit of ${max}`);
  }

  /** Closes this connection with the close code of `code`; later frames are dropped unread. */
  fail(code: ErrorCode, reason: string): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#to('closing');
    this.#failedWith = code;
    this.#log.info('closing agent connection', { code, reason });
    const socket = this.#transport.socket;
    socket.close(ERROR_TABLE[code].ws, closeReason(`${code}: ${reason}`));
    // A peer that does not complete the closing handshake is cut off.
    setTimeout(() => {
      socket.terminate();
    }, 1000).unref();
  }

  /** Closes a connection that sends no hello in time, or goes silent once ready. */
  #startTimeouts(limits: ConnectionLimits): NodeJS.Timeout {
    const started = loopMonitor.liveNow();
    const timer = setInterval(
      () => {
        const now = loopMonitor.liveNow();
        if (this.#state === 'handshake' && now - started > limits.helloTimeoutMs) {
          this.fail('handshake_timeout', 'no hello received in time');
        } else if (this.#state === 'ready' && now - this.#lastSeen > limits.idleTimeoutMs) {
          this.fail('liveness_timeout', 'no frame received within the idle timeout');
        }
      },
      Math.max(10, Math.min(limits.helloTimeoutMs, limits.idleTimeoutMs) / 4),
    );
    timer.unref();
    return timer;
  }

  #onMessage(data: RawFrame, isBinary: boolean): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#lastSeen = loopMonitor.liveNow();
    if (!this.#bucket.take()) {
      this.fail('rate_limited', `more than ${this.#host.limits.maxFramesPerSec} frames/s`);
      return;
    }
    if (isBinary) {
      this.fail('invalid_frame', 'binary frames are not part of the protocol');
      return;
    }
    const text = frameText(data);
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
    if (this.#state === 'handshake') {
      if (frame.type === 'hello') this.#onHello(frame);
      else this.fail('invalid_frame', `expected hello, got ${frame.type}`);
      return;
    }
    if (frame.type === 'publish' || frame.type === 'unpublish') {
      // Its length in characters stands for its bytes (exact for the ASCII of nearly every frame).
      this.#queueWrite(frame, text.length);
      return;
    }
    try {
      this.#handleNow(frame);
    } catch (err) {
      this.#failInternal(frame.type, err);
    }
  }

  #queueWrite(frame: Publish | Unpublish, bytes: number): void {
    this.#queuedWriteBytes += bytes;
    this.#checkQueued(bytes);
    this.#writes = this.#writes
      .then(async () => {
        // Taken up: no longer waiting (the one in progress is not the reader's backlog).
        this.#queuedWriteBytes -= bytes;
        if (this.#state !== 'ready') return;
        const confirm =
          frame.type === 'publish'
            ? await this.#host.publish(this, frame)
            : await this.#host.unpublish(this, frame);
        this.#reply(confirm);
      })
      .catch((err: unknown) => {
        this.#failInternal(frame.type, err);
      });
  }

  #failInternal(type: AgentFrame['type'], err: unknown): void {
    this.#log.error('frame handling failed', { type, err });
    this.fail('internal', 'internal error');
  }

  /** Every frame but a write, on a connection past its hello. */
  #handleNow(frame: Exclude<AgentFrame, Publish | Unpublish>): void {
    switch (frame.type) {
      case 'hello':
        this.fail('invalid_frame', 'hello sent twice');
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
        this.#host.subscribeCatalog(this, frame.knownVersion);
        return;
      case 'ack':
        this.#host.ack(this, frame.service, frame.version);
        return;
      case 'acks':
        for (const a of frame.acks) this.#host.ack(this, a.service, a.version);
        return;
      case 'ping':
        this.#reply({ type: 'pong', sentAt: frame.sentAt });
        return;
      default: {
        const never: never = frame;
        throw new Error(`unhandled frame ${String(never)}`);
      }
    }
  }

  #onHello(hello: Hello): void {
    // Every supported version is accepted as is; any other is refused naming the newest one.
    const supported = SUPPORTED_PROTOCOL_VERSIONS.includes(hello.protocolVersion);
    const want = supported ? hello.protocolVersion : PROTOCOL_VERSION;
    const mismatch = protocolMismatch(AGENT_LINK_NAME, hello.protocolVersion, want);
    if (mismatch !== undefined) {
      this.fail(mismatch.code, mismatch.message);
      return;
    }
    this.#hello = hello;
    const refusal = this.#host.authenticate(this, hello) ?? this.#host.admit(this);
    if (refusal !== undefined) {
      this.fail(refusal.code, refusal.reason);
      return;
    }
    this.#to('ready');
    this.#welcomed = true;
    // Authenticated: from the next frame on, the full frame limit applies.
    this.#transport.setFrameLimit(this.#host.maxFrameBytes);
    this.#host.adopt(this);
    const welcome: Welcome = {
      type: 'welcome',
      protocolVersion: hello.protocolVersion,
      sessionId: this.#host.sessionId,
      sessions: this.#host.sessions(),
      pingIntervalMs: this.#host.limits.pingIntervalMs,
    };
    this.#reply(welcome);
    const dcs = this.#host.datacentersFrame?.(hello.protocolVersion);
    if (dcs !== undefined) this.#reply(dcs);
    this.#log.info('agent connected', { nodeId: hello.nodeId, nodeName: hello.nodeName });
  }

  #onClose(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    clearInterval(this.#timer);
    loopMonitor.stop();
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
