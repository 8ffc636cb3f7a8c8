/**
 * The items of the session's write path on their way to data servers, and how one data server's
 * answer for an item is read: done (confirm it to the agent), retry later, or refused.
 */
import { MAX_BATCH, type ConfirmResult } from '../../proto/agent-link.js';
import type { PublishItem, UnpublishItem } from '../../proto/cluster-records.js';
import type { MeshregError } from '../../proto/errors.js';
import type { PublishOutcome, UnpublishOutcome } from '../../proto/write-outcomes.js';

/** One publisher or withdrawal of one agent connection (`id` is the service ID on the agent's node). */
export type Write =
  | { readonly op: 'publish'; readonly conn: string; readonly id: string; readonly item: PublishItem }
  | { readonly op: 'unpublish'; readonly conn: string; readonly id: string; readonly item: UnpublishItem };

export type PublishWrite = Extract<Write, { op: 'publish' }>;
export type UnpublishWrite = Extract<Write, { op: 'unpublish' }>;

/** What became of one item: a data server's outcome, or the failure of the call that carried it. */
export type ItemOutcome = PublishOutcome | UnpublishOutcome | MeshregError;

/** What the write path does with an item, given its outcome. */
export type Verdict =
  | { readonly kind: 'confirm'; readonly result: ConfirmResult }
  | { readonly kind: 'retry' }
  | { readonly kind: 'refuse'; readonly result: ConfirmResult };

/**
 * Outcomes that mean "not now": no data server leads the slot at the caller's epoch, or none could be
 * reached. They clear up by themselves (a new table, a reconnect), so the item waits and is retried.
 */
const RETRIABLE: ReadonlySet<string> = new Set(['stale_epoch', 'unavailable']);

/** The slot key an item is routed by. */
export function keyOf(w: Write): string {
  return w.op === 'publish' ? w.item.instance.service : w.item.key;
}

/** The identity of an item in the retry queue: a newer write of the same item replaces it. */
export function pendingKey(w: Write): string {
  return `${w.op}:${w.conn}:${w.id}`;
}

/**
 * Reads one item's outcome. Every outcome a data server answers with (`applied`, `unchanged`,
 * `owner-changed`, `stale`, `removed`, `absent`) means the item is settled: a newer version held,
 * or nothing left to remove, is as good as done for the agent.
 */
export function verdict(w: Write, outcome: ItemOutcome): Verdict {
  const code = typeof outcome === 'string' ? outcome : outcome.code;
  if (RETRIABLE.has(code)) return { kind: 'retry' };
  const result: ConfirmResult = { op: w.op, id: w.id, version: w.item.version };
  if (typeof outcome === 'string') return { kind: 'confirm', result };
  return { kind: 'refuse', result: { ...result, error: { code, message: outcome.message } } };
}

/**
 * `writes` in runs of at most MAX_BATCH (what one agent frame carries) and, when `maxBytes` is
 * given, of about that many JSON bytes of items.
 */
export function chunks<W extends Write>(writes: readonly W[], maxBytes: number | undefined): W[][] {
  const out: W[][] = [];
  let current: W[] = [];
  let bytes = 0;
  for (const w of writes) {
    // Only retries measure: live writes arrive within an agent frame's limit already.
    const size = maxBytes === undefined ? 0 : Buffer.byteLength(JSON.stringify(w.item)) + 1;
    if (current.length > 0 && (current.length >= MAX_BATCH || bytes + size > (maxBytes ?? Infinity))) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(w);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** `results` as confirm frames of at most MAX_BATCH results each (the agent refuses larger ones). */
export function confirmFrames(results: readonly ConfirmResult[]): ConfirmResult[][] {
  const out: ConfirmResult[][] = [];
  for (let i = 0; i < results.length; i += MAX_BATCH) out.push(results.slice(i, i + MAX_BATCH));
  return out;
}
