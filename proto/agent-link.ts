/**
 * The agent ⇄ session protocol: JSON text frames over one WebSocket per host.
 *
 * Handshake: the agent's first frame is `hello` (protocol version, node identity, token); the session
 * answers `welcome` or closes with a code from the error table (`errors.ts`). After `welcome` the agent re-sends
 * its whole state (publish, subscribe with known versions), then streams changes. The session pushes
 * immutable, versioned snapshots of each subscribed service; the agent acknowledges each by version.
 *
 * The frames live in two files, one per direction: `agent-frames.ts` (agent → session) and
 * `session-frames.ts` (session → agent). This file is the protocol's one entry point and re-exports them.
 */

export {
  MAX_BATCH,
  decodeAgentFrame,
  type Ack,
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
  decodeSessionFrame,
  type Catalog,
  type Confirm,
  type ConfirmResult,
  type Pong,
  type Push,
  type Refused,
  type SessionFrame,
  type Welcome,
} from './session-frames.js';

/** Bumped on any incompatible change; the session refuses other versions with close code 4002. */
export const PROTOCOL_VERSION = 1;
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
