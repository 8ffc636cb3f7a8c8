/**
 * The session side of an agent's upstream link, in memory: a {@link SocketFactory} that hands the
 * link one end of a {@link socketPair} per dial and keeps the other end for the test, which then
 * accepts (welcome), refuses (close) or ignores each dial, and reads what the agent sent.
 */
import type { SocketFactory } from '../../agent/upstream/connection.js';
import {
  PROTOCOL_VERSION,
  type AgentFrame,
  type SessionFrame,
  type Welcome,
} from '../../proto/agent-link.js';
import { settle } from './fixtures.js';
import { socketPair, type MemorySocket } from './socket-pair.js';

/** One connection attempt of the link. */
export interface Dial {
  readonly url: string;
  /** The link's end. */
  readonly agent: MemorySocket;
  /** The test's end, standing for the session server. */
  readonly session: MemorySocket;
}

export class FakeSessions {
  readonly dials: Dial[] = [];

  /** The factory to give the link (`LinkOptions.connect`). */
  readonly connect: SocketFactory = (url) => {
    const { a, b } = socketPair();
    this.dials.push({ url, agent: a, session: b });
    return a;
  };

  /** The latest dial (fails the test when there is none). */
  get last(): Dial {
    const d = this.dials.at(-1);
    if (d === undefined) throw new Error('the link has not dialled yet');
    return d;
  }

  /** The URLs dialled so far, in order. */
  get urls(): string[] {
    return this.dials.map((d) => d.url);
  }

  /** Completes the latest dial's WebSocket handshake (the link then sends its hello). */
  async open(): Promise<Dial> {
    const d = this.last;
    d.agent.open();
    await settle();
    return d;
  }

  /** Opens the latest dial and answers its hello with a welcome listing `sessions`. */
  async accept(sessions: readonly string[] = [], sessionId = `session-${this.dials.length}`): Promise<Dial> {
    const d = await this.open();
    const welcome: Welcome = {
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      sessionId,
      sessions,
      pingIntervalMs: 60_000,
    };
    await send(d, welcome);
    return d;
  }

  /** Closes the latest dial from the session side (before or after its handshake). */
  async close(code: number, reason = ''): Promise<void> {
    this.last.session.close(code, reason);
    await settle();
  }
}

/** Sends `frame` from the session side of `d` and lets the link handle it. */
export async function send(d: Dial, frame: SessionFrame): Promise<void> {
  d.session.send(JSON.stringify(frame));
  await settle();
}

/** The frames the link sent on `d`, parsed. */
export function sentBy(d: Dial): AgentFrame[] {
  return d.agent.sentFrames() as AgentFrame[];
}
