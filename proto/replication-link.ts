/**
 * Replication (a follower → the slot leader, over the leader's data link): the follower asks for a
 * paged snapshot of the slots it follows there, then receives one `repl` event per change, stamped
 * with the leader's clock.
 */
import {
  KEY_RULES,
  decodeSlotSelection,
  readOwnedPublisher,
  type OwnedPublisher,
} from './cluster-records.js';
import { HELLO_METHOD, pagedMethod, rpcEvent } from './rpc.js';
import { at, decodeObject, readInt, readObject, readString, type Decoded, type Issues } from './validate.js';

/** A withdrawn registration remembered for a while (a tombstone): publishes up to `version` are refused. */
export interface TombstoneRecord {
  readonly registrationId: string;
  readonly version: number;
}

/** A tombstone with the service key it belongs to. */
export interface KeyedTombstone extends TombstoneRecord {
  readonly key: string;
}

export interface ReplicatedDatum {
  readonly key: string;
  readonly version: number;
  readonly publishers: readonly OwnedPublisher[];
}

/** A leader's copy of one slot, rebuilt from a paged snapshot. */
export interface ReplicaSlot {
  readonly slot: number;
  readonly datums: readonly ReplicatedDatum[];
  readonly tombstones: readonly KeyedTombstone[];
}

/**
 * One item of a leader's paged snapshot (`replicate`): `{slot}` opens a slot the leader serves (so
 * the follower replaces it even when it is empty); then one item per publisher of each datum in it,
 * or one without `publisher` for a datum that has none. A datum's items share key and version.
 * A tombstone of the slot is an item with `key` and `tombstone` (and no version).
 */
export type ReplicaItem =
  | { readonly slot: number }
  | {
      readonly slot: number;
      readonly key: string;
      readonly version: number;
      readonly publisher?: OwnedPublisher;
    }
  | { readonly slot: number; readonly key: string; readonly tombstone: TombstoneRecord };

/** One change streamed from a slot leader to its followers; with neither `put` nor `del`, a version bump. */
export interface ReplicationOp {
  readonly slot: number;
  readonly key: string;
  readonly version: number;
  readonly put?: OwnedPublisher;
  readonly del?: string;
  /**
   * A withdrawal the follower must remember (with `del`, or alone when nothing was held): the
   * registration and the version it was withdrawn at. A tombstone alone changes no datum.
   */
  readonly tomb?: TombstoneRecord;
  /** Leader's wall clock when sent, for the replication-lag measurement. */
  readonly sentAt: number;
}

/** One item of a paged `replicate` answer ({@link ReplicaItem}). */
export const decodeReplicaItem = (raw: unknown): Decoded<ReplicaItem> =>
  decodeObject(raw, (issues, o) => {
    const slot = readInt(issues, o['slot'], 'slot', { required: true, max: 65535 });
    if (o['key'] === undefined) return slot === undefined ? undefined : { slot };
    const key = readString(issues, o['key'], 'key', KEY_RULES);
    if (o['tombstone'] !== undefined) {
      const tombstone = readTombstone(issues, o['tombstone'], 'tombstone');
      return slot === undefined || key === undefined || tombstone === undefined
        ? undefined
        : { slot, key, tombstone };
    }
    const version = readInt(issues, o['version'], 'version', { required: true });
    const publisher =
      o['publisher'] === undefined ? undefined : readOwnedPublisher(issues, o['publisher'], 'publisher');
    if (slot === undefined || key === undefined || version === undefined) return undefined;
    return publisher === undefined ? { slot, key, version } : { slot, key, version, publisher };
  });

export const decodeReplicationOp = (raw: unknown): Decoded<ReplicationOp> =>
  decodeObject(raw, (issues, o) => {
    const slot = readInt(issues, o['slot'], 'slot', { required: true });
    const key = readString(issues, o['key'], 'key', KEY_RULES);
    const version = readInt(issues, o['version'], 'version', { required: true });
    const sentAt = readInt(issues, o['sentAt'], 'sentAt', { required: true });
    const put = o['put'] === undefined ? undefined : readOwnedPublisher(issues, o['put'], 'put');
    const del = readString(issues, o['del'], 'del', { maxLength: 512 });
    const tomb = o['tomb'] === undefined ? undefined : readTombstone(issues, o['tomb'], 'tomb');
    if (slot === undefined || key === undefined || version === undefined || sentAt === undefined)
      return undefined;
    // Neither put nor del: a version bump (after a slot rebuild).
    return {
      slot,
      key,
      version,
      sentAt,
      ...(put !== undefined ? { put } : {}),
      ...(del !== undefined ? { del } : {}),
      ...(tomb !== undefined ? { tomb } : {}),
    };
  });

function readTombstone(issues: Issues, raw: unknown, path: string): TombstoneRecord | undefined {
  const o = readObject(issues, raw, path);
  if (o === undefined) return undefined;
  const registrationId = readString(issues, o['registrationId'], at(path, 'registrationId'), {
    required: true,
    maxLength: 512,
  });
  const version = readInt(issues, o['version'], at(path, 'version'), { required: true, min: 1 });
  return registrationId === undefined || version === undefined ? undefined : { registrationId, version };
}

/** The contract of replication, served by a slot leader on its data link. */
export const REPLICATION_LINK = Object.freeze({
  hello: HELLO_METHOD,
  /** A snapshot of the asked slots the leader serves (paged: a slot may hold very many publishers). */
  replicate: pagedMethod('replicate', decodeSlotSelection, decodeReplicaItem),
  /** One change of a slot the follower asked for. */
  repl: rpcEvent('repl', decodeReplicationOp),
});
