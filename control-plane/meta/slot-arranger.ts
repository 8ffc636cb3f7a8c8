/**
 * Assigns slots to data servers. Pure: the previous table and the live members in, the next table out.
 *
 * The order of concerns follows SOFARegistry's arranger: first give every slot a live leader
 * (promoting a follower, which already holds the data, before picking a fresh node), then fill
 * followers up to the replica count, and only then balance leaders, a bounded number of moves per
 * round so that a joining server takes load in steps rather than all at once.
 */
import type { Slot, SlotTable } from '../../proto/slot-table.js';

export interface ArrangeOptions {
  readonly slotCount: number;
  /** Followers per slot (replicas beyond the leader), capped by the number of live servers − 1. */
  readonly followers: number;
  /** Most leader moves one round may make while balancing. */
  readonly maxLeaderMoves: number;
  /** Produces the next epoch, greater than the argument. */
  readonly nextEpoch: (previous: number) => number;
}

interface MutableSlot {
  id: number;
  leader: string;
  leaderEpoch: number;
  followers: string[];
}

/** Returns the next table, or `prev` itself when nothing needs to change. */
export function arrangeSlots(
  prev: SlotTable | undefined,
  live: readonly string[],
  opts: ArrangeOptions,
): SlotTable | undefined {
  // With no data server alive there is nothing sound to assign: keep the last table.
  if (live.length === 0) return prev;
  const liveSet = new Set(live);
  const sortedLive = [...live].sort();
  const slots: MutableSlot[] = [];
  for (let id = 0; id < opts.slotCount; id++) {
    const old = prev?.slots[id];
    slots.push(
      old
        ? { id, leader: old.leader, leaderEpoch: old.leaderEpoch, followers: [...old.followers] }
        : { id, leader: '', leaderEpoch: 0, followers: [] },
    );
  }
  const leaderLoad = new Map<string, number>(sortedLive.map((n) => [n, 0]));
  const totalLoad = new Map<string, number>(sortedLive.map((n) => [n, 0]));
  const bump = (m: Map<string, number>, n: string, d: number): void => {
    m.set(n, (m.get(n) ?? 0) + d);
  };
  const leastLoaded = (m: Map<string, number>, exclude: ReadonlySet<string>): string | undefined => {
    let best: string | undefined;
    for (const n of sortedLive) {
      if (exclude.has(n)) continue;
      if (best === undefined || (m.get(n) ?? 0) < (m.get(best) ?? 0)) best = n;
    }
    return best;
  };

  // Drop dead members, and count what the survivors already hold.
  for (const s of slots) {
    s.followers = s.followers.filter((f) => liveSet.has(f) && f !== s.leader);
    if (!liveSet.has(s.leader)) s.leader = '';
    if (s.leader !== '') {
      bump(leaderLoad, s.leader, 1);
      bump(totalLoad, s.leader, 1);
    }
    for (const f of s.followers) bump(totalLoad, f, 1);
  }
  // 1. Every slot gets a live leader: a follower first (it has the data), else the least loaded node.
  for (const s of slots) {
    if (s.leader !== '') continue;
    let pick: string | undefined;
    for (const f of s.followers)
      if (pick === undefined || (leaderLoad.get(f) ?? 0) < (leaderLoad.get(pick) ?? 0)) pick = f;
    if (pick !== undefined) {
      s.followers = s.followers.filter((f) => f !== pick);
      bump(totalLoad, pick, -1);
    } else {
      pick = leastLoaded(leaderLoad, new Set());
    }
    if (pick === undefined) continue;
    s.leader = pick;
    s.leaderEpoch++;
    bump(leaderLoad, pick, 1);
    bump(totalLoad, pick, 1);
  }
  // 2. Fill followers.
  const want = Math.min(opts.followers, sortedLive.length - 1);
  for (const s of slots) {
    if (s.followers.length > want) {
      for (const f of s.followers.splice(want)) bump(totalLoad, f, -1);
    }
    while (s.followers.length < want) {
      const pick = leastLoaded(totalLoad, new Set([s.leader, ...s.followers]));
      if (pick === undefined) break;
      s.followers.push(pick);
      bump(totalLoad, pick, 1);
    }
  }
  // 3. Balance leaders in bounded steps; prefer handing a slot to one of its followers (no data copy).
  for (let moves = 0; moves < opts.maxLeaderMoves; moves++) {
    let most = sortedLive[0] ?? '';
    let least = most;
    for (const n of sortedLive) {
      if ((leaderLoad.get(n) ?? 0) > (leaderLoad.get(most) ?? 0)) most = n;
      if ((leaderLoad.get(n) ?? 0) < (leaderLoad.get(least) ?? 0)) least = n;
    }
    if ((leaderLoad.get(most) ?? 0) - (leaderLoad.get(least) ?? 0) <= 1) break;
    const candidates = slots.filter((s) => s.leader === most);
    const s = candidates.find((c) => c.followers.includes(least)) ?? candidates[0];
    if (s === undefined) break;
    const wasFollower = s.followers.includes(least);
    s.followers = s.followers.filter((f) => f !== least);
    if (want > 0) s.followers.unshift(most);
    else bump(totalLoad, most, -1);
    if (!wasFollower) bump(totalLoad, least, 1);
    for (const f of s.followers.splice(want)) bump(totalLoad, f, -1);
    s.leader = least;
    s.leaderEpoch++;
    bump(leaderLoad, most, -1);
    bump(leaderLoad, least, 1);
  }

  const next: Slot[] = slots.map((s) => ({
    id: s.id,
    leader: s.leader,
    leaderEpoch: s.leaderEpoch,
    followers: s.followers,
  }));
  if (prev !== undefined && prev.slotCount === opts.slotCount && sameSlots(prev.slots, next)) return prev;
  return { epoch: opts.nextEpoch(prev?.epoch ?? 0), slotCount: opts.slotCount, slots: next };
}

function sameSlots(a: readonly Slot[], b: readonly Slot[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined || y === undefined) return false;
    if (x.leader !== y.leader || x.leaderEpoch !== y.leaderEpoch) return false;
    if (x.followers.length !== y.followers.length || x.followers.some((f, j) => f !== y.followers[j]))
      return false;
  }
  return true;
}
