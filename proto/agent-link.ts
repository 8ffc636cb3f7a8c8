/**
 * The agent ⇄ session protocol: JSON text frames over one WebSocket per host.
 *
 * Handshake: the agent's first frame is `hello` (protocol version, node identity, token); the session
 * answers `welcome` or closes with a code from the error table (`errors.ts`). After `welcome` the agent re-sends
 * its whole state (publish, subscribe with known versions), then streams changes. The session pushes
 * immutable, versioned snapshots of each subscribed service; the agent acknowledges each by version.
 *
 * Versions: the hello names the version the agent speaks; the session accepts every version in
 * {@link SUPPORTED_PROTOCOL_VERSIONS}, answers `welcome` with the same one, and closes with 4002
 * otherwise (an agent refused that way may try the previous version). Version 1 is the above.
 * Version 2 adds, session → agent, `delta` (the changes since the version the agent holds; a whole
 * `push` when its base is unknown, too old, or the delta would not be smaller) and, agent → session,
 * `acks` (the pushes of one event-loop turn acknowledged in one frame). Version 3 adds, session →
 * agent, `slow_down` (the session is overloaded: defer non-urgent sends for `retryAfterMs` and do
 * not count its slowness as death); a session sends it only to agents that spoke version 3.
 * Version 4 adds data centers: the hello's `datacenter` (a session of another one refuses it with
 * 4015), watch keys qualified by a federated data center (`web@dc2`, see `datacenter.ts`) in
 * subscribe, unsubscribe, acks, push and delta, and, session → agent, `datacenters` (the peers, their
 * link state and exports); a session sends `datacenters` only to agents that spoke version 4.
 *
 * The frames live in two files, one per direction: `agent-frames.ts` (agent → session) and
 * `session-frames.ts` (session → agent). This file is the protocol's one entry point and re-exports them.
 */

export {
  MAX_BATCH,
  decodeAgentFrame,
  type Ack,
  type AckItem,
  type Acks,
  type AgentFrame,
  type CatalogSubscribe,
  type Hello,
  type Interest,
  type Ping,
  type Publish,
  type Registration,
  type Subscribe,
  type Unpublish,
  type Unsubscribe,
  type Withdrawal,
} from './agent-frames.js';
export {
  MAX_PEERS,
  MAX_PEER_SERVICES,
  MAX_PUSH_INSTANCES,
  MAX_SLOW_DOWN_MS,
  decodeSessionFrame,
  type Catalog,
  type Confirm,
  type ConfirmResult,
  type Datacenters,
  type Delta,
  type PeerDatacenter,
  type Pong,
  type Push,
  type Refused,
  type SessionFrame,
  type SlowDown,
  type Welcome,
} from './session-frames.js';

/**
 * The version agents speak: bumped on any change; 2 adds `delta` and `acks`, 3 adds `slow_down`,
 * 4 adds data centers (see the file comment).
 */
export const PROTOCOL_VERSION = 4;
/** The versions a session accepts; it refuses others with close code 4002. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = Object.freeze([1, 2, 3, 4]);
/** The first version with `delta` and `acks` frames. */
export const DELTA_PROTOCOL_VERSION = 2;
/** The first version with the `slow_down` frame (older agents would close on an unknown frame). */
export const SLOW_DOWN_PROTOCOL_VERSION = 3;
/** The first version with data centers (the `datacenters` frame, qualified watch keys). */
export const DATACENTERS_PROTOCOL_VERSION = 4;
/** How close reasons and logs name this protocol. */
export const AGENT_LINK_NAME = 'agent link';
/** URL path of the agent link on a session server. */
export const AGENT_LINK_PATH = '/v1/agent-link';

/** Parses a text frame as JSON; `undefined` when it is not JSON. */
export function parseJsonFrame(data: string): unknown {
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return undefined;
  }
}
