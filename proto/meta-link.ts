/**
 * The meta link (data and session servers → meta): a member says hello, keeps its lease with
 * heartbeats, and receives the slot table, the member lists, the operator switches and a drain.
 */
import { readMembers, type Member } from './cluster-records.js';
import { HELLO_METHOD, decodeNoParams, rpcEvent, rpcMethod, type Decoder } from './rpc.js';
import { decodeSlotTableInto, type SlotTable } from './slot-table.js';
import { decodeFederationConfig } from './federation.js';
import { decodeDrain, decodeSwitches } from './switches.js';
import { decodeField, decodeObject, readBool, readInt, readString, type Decoded } from './validate.js';

export const META_LINK_PATH = '/v1/meta-link';

/** Every data and session server, pushed by meta on any membership change. */
export interface MembersEvent {
  readonly data: readonly Member[];
  readonly sessions: readonly Member[];
}

export interface HeartbeatParams {
  readonly id: string;
}

/** The epoch of the slot table meta holds (0 before the first). */
export interface HeartbeatAnswer {
  readonly epoch: number;
}

/**
 * Meta's answer to a member that asks to be drained (before it stops): `draining` when meta took the
 * drain (its drain event follows), else why not (e.g. it is the last server of its role).
 */
export interface DrainSelfAnswer {
  readonly draining: boolean;
  readonly reason: string;
}

export const decodeMembers = (raw: unknown): Decoded<MembersEvent> =>
  decodeObject(raw, (issues, o) => ({
    data: readMembers(issues, o['data'], 'data'),
    sessions: readMembers(issues, o['sessions'], 'sessions'),
  }));

export const decodeSlotTable = (raw: unknown): Decoded<SlotTable> =>
  decodeObject(raw, (issues, o) => decodeSlotTableInto(issues, o));

const decodeHeartbeat: Decoder<HeartbeatParams> = decodeField('id', (issues, raw, path) =>
  readString(issues, raw, path, { required: true, maxLength: 256 }),
);
const decodeHeartbeatAnswer: Decoder<HeartbeatAnswer> = decodeField('epoch', (issues, raw, path) =>
  readInt(issues, raw, path, { required: true }),
);

const decodeDrainSelfAnswer: Decoder<DrainSelfAnswer> = (raw) =>
  decodeObject(raw, (issues, o) => ({
    draining: readBool(issues, o['draining'], 'draining', true) ?? false,
    reason: readString(issues, o['reason'], 'reason', { maxLength: 1024 }) ?? '',
  }));

/** The contract of the meta link: methods members call on meta, events meta sends to members. */
export const META_LINK = Object.freeze({
  hello: HELLO_METHOD,
  /** Renews the caller's lease. */
  heartbeat: rpcMethod('heartbeat', decodeHeartbeat, decodeHeartbeatAnswer),
  /** A new slot table (every member). */
  table: rpcEvent('table', decodeSlotTable),
  members: rpcEvent('members', decodeMembers),
  /** The operator switches (sessions only). */
  switches: rpcEvent('switches', decodeSwitches),
  /** The federation configuration: peers, their tokens, the export lists (sessions only). */
  federation: rpcEvent('federation', decodeFederationConfig),
  /** A member asks meta to drain it (the caller itself, named by its hello), e.g. as it stops. */
  drainSelf: rpcMethod('drain-self', decodeNoParams, decodeDrainSelfAnswer),
  /** Meta asks this member to drain. */
  drain: rpcEvent('drain', decodeDrain),
});
