/**
 * A {@link ConnectionHost} for unit tests of {@link AgentConnection}: it records every call in order
 * and can hold writes (publish/unpublish) unanswered, like a data layer in the middle of a failover.
 * With {@link memoryTransport} a connection runs over an in-memory socket pair instead of `ws`.
 */
import type { Confirm, Publish, Unpublish } from '../../proto/agent-link.js';
import type { ErrorCode } from '../../proto/errors.js';
import { silentLogger, type Logger } from '../../proto/runtime/log.js';
import type {
  AgentConnection,
  ConnectionHost,
  ConnectionLimits,
} from '../../control-plane/session/agent-connection.js';
import type { AgentTransport } from '../../control-plane/session/agent-transport.js';
import type { MemorySocket } from './socket-pair.js';

/** Where a host may hand subscriptions and acks on (a real push dispatcher, for whole-path tests). */
export interface PushSink {
  subscribe(conn: AgentConnection, key: string, knownVersion: number | undefined): void;
  ack(conn: AgentConnection, key: string, version: number): void;
  removeTarget(conn: AgentConnection, keys: Iterable<string>): void;
}

/** Limits generous enough that only the test decides when a connection closes. */
export const TEST_LIMITS: ConnectionLimits = Object.freeze({
  helloTimeoutMs: 10_000,
  idleTimeoutMs: 10_000,
  pingIntervalMs: 1000,
  maxFramesPerSec: 1000,
  frameBurst: 1000,
});

export class FakeConnectionHost implements ConnectionHost {
  readonly sessionId = 'session-test';
  readonly logger: Logger = silentLogger;
  readonly maxFrameBytes = 1 << 20;
  readonly limits: ConnectionLimits;
  /** Every call, in order: `adopt`, `publish:start`, `publish:done`, `ack web@3`, `closed`, ... */
  readonly calls: string[] = [];
  /** What {@link admit} answers (a refusal closes the connection). */
  refusal: { code: ErrorCode; reason: string } | undefined;
  /** While true, writes wait until {@link releaseWrites}. */
  holdWrites = false;
  readonly #held: (() => void)[] = [];

  constructor(
    readonly token = 'secret',
    limits: Partial<ConnectionLimits> = {},
    /** Subscriptions and acks are recorded and, when given, handed on to this. */
    readonly push?: PushSink,
  ) {
    this.limits = { ...TEST_LIMITS, ...limits };
  }

  authenticate(_conn: unknown, hello: { token: string }): { code: ErrorCode; reason: string } | undefined {
    if (hello.token === this.token) return undefined;
    return { code: 'unauthorized', reason: hello.token === '' ? 'missing token' : 'wrong token' };
  }

  sessions(): string[] {
    return ['ws://127.0.0.1:1/v1/agent-link'];
  }

  admit(): { code: ErrorCode; reason: string } | undefined {
    return this.refusal;
  }

  adopt(): void {
    this.calls.push('adopt');
  }

  publish(_conn: AgentConnection, frame: Publish): Promise<Confirm> {
    return this.#write(
      'publish',
      frame.registrations.map((r) => ({ op: 'publish', id: r.instance.id, version: r.version })),
    );
  }

  unpublish(_conn: AgentConnection, frame: Unpublish): Promise<Confirm> {
    return this.#write(
      'unpublish',
      frame.registrations.map((r) => ({ op: 'unpublish', id: r.id, version: r.version })),
    );
  }

  subscribe(conn: AgentConnection, key: string, knownVersion: number | undefined): boolean {
    this.calls.push(`subscribe ${key}@${String(knownVersion)}`);
    this.push?.subscribe(conn, key, knownVersion);
    return true;
  }

  subscribeCatalog(_conn: AgentConnection, knownVersion: number | undefined): void {
    this.calls.push(`subscribeCatalog@${String(knownVersion)}`);
  }

  unsubscribe(_conn: AgentConnection, key: string): void {
    this.calls.push(`unsubscribe ${key}`);
  }

  ack(conn: AgentConnection, key: string, version: number): void {
    this.calls.push(`ack ${key}@${version}`);
    this.push?.ack(conn, key, version);
  }

  closed(conn: AgentConnection): void {
    this.calls.push('closed');
    this.push?.removeTarget(conn, conn.subscriptions);
  }

  /** Lets every held write finish, in the order they started. */
  releaseWrites(): void {
    this.holdWrites = false;
    for (const done of this.#held.splice(0)) done();
  }

  #write(op: 'publish' | 'unpublish', results: Confirm['results']): Promise<Confirm> {
    this.calls.push(`${op}:start`);
    const confirm: Confirm = { type: 'confirm', results };
    return new Promise((resolve) => {
      const done = (): void => {
        this.calls.push(`${op}:done`);
        resolve(confirm);
      };
      if (this.holdWrites) this.#held.push(done);
      else done();
    });
  }
}

/** An {@link AgentTransport} over an in-memory socket; `frameLimits` records each limit set. */
export function memoryTransport(socket: MemorySocket): AgentTransport & { readonly frameLimits: number[] } {
  const frameLimits: number[] = [];
  return {
    socket,
    frameLimits,
    sendEncoded(frame, written) {
      socket.send(frame.toString('utf8'), written);
    },
    onOversized() {
      // An in-memory socket has no frame limit to enforce; ws-limits has its own tests.
    },
    setFrameLimit(bytes) {
      frameLimits.push(bytes);
    },
  };
}
