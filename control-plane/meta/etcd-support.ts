/**
 * Small pieces of the etcd store: the health probe's interval, the watch reconnection backoff handed
 * to the etcd client, and the decoding of a stored member.
 */
import { isRecord } from '../../proto/validate.js';
import type { SharedMember } from './meta-store.js';

/** The health probe's interval: a quarter of the TTL, within 100 ms..1 s. */
export function probeInterval(leaseTtlS: number): number {
  return Math.min(1000, Math.max(100, Math.floor((leaseTtlS * 1000) / 4)));
}

/** A delay of the etcd client's watch reconnection backoff, and the one after it. */
export interface WatchBackoff {
  readonly duration: number;
  next(): WatchBackoff;
}

/**
 * The etcd client's watch reconnection backoff: doubling from 100 ms (the client takes the first
 * `next()`) up to `maxMs`, so a watch is back within `maxMs` of etcd answering again.
 */
export function watchBackoff(maxMs: number, durationMs = 50): WatchBackoff {
  return { duration: durationMs, next: () => watchBackoff(maxMs, Math.min(maxMs, durationMs * 2)) };
}

/** A stored member's value, or `undefined` when it is not one. */
export function parseMember(text: string): SharedMember | undefined {
  try {
    const o = JSON.parse(text) as unknown;
    if (!isRecord(o)) return undefined;
    const role = o['role'];
    const url = o['url'];
    if ((role !== 'data' && role !== 'session') || typeof url !== 'string') return undefined;
    return { role, url, draining: o['draining'] === true };
  } catch {
    return undefined;
  }
}
