/**
 * How meta's console reaches its members: each call goes over the member's meta link with a bounded
 * time, and a member that is down, linked to another meta, or too slow is reported as unreachable
 * instead of holding the answer up.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AdminMember } from '../../proto/admin-api.js';
import type { RpcPeer } from '../link/rpc-peer.js';

/** What the console needs of meta's membership. */
export interface ConsoleMembers {
  members(): AdminMember[];
  /** The open link of a member linked to this meta. */
  memberPeer(id: string): RpcPeer | undefined;
  /** Longest wait for one member's answer. */
  readonly consoleCallMs: number;
}

/** The answers of the members that gave one, and the IDs of those that did not. */
export interface Gathered<T> {
  readonly answers: Map<string, T>;
  readonly unreachable: string[];
}

/** Calls `call` on every member of `role` at once, each bounded by `consoleCallMs`. */
export async function gather<T>(
  host: ConsoleMembers,
  role: 'data' | 'session',
  call: (peer: RpcPeer, timeoutMs: number) => Promise<T>,
  only?: ReadonlySet<string>,
): Promise<Gathered<T>> {
  const members = host.members().filter((m) => m.role === role && (only === undefined || only.has(m.id)));
  const answers = new Map<string, T>();
  const unreachable: string[] = [];
  await Promise.all(
    members.map(async (m) => {
      const peer = host.memberPeer(m.id);
      if (peer === undefined) {
        unreachable.push(m.id);
        return;
      }
      try {
        answers.set(m.id, await withDeadline(call(peer, host.consoleCallMs), host.consoleCallMs));
      } catch {
        unreachable.push(m.id);
      }
    }),
  );
  return { answers, unreachable: unreachable.sort() };
}

/** `p`, or a rejection once `ms` passed (a paged call makes several round trips). */
async function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  const stop = new AbortController();
  const late = sleep(ms, undefined, { signal: stop.signal }).then(() => {
    throw new Error(`no answer within ${ms} ms`);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    stop.abort();
  }
}
