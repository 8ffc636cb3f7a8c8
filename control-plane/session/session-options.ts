/**
 * What a session server is configured with: its address, the agents' tokens, frame and connection
 * limits, the grace of closed connections, push pacing and retries, the write path's rate, and when
 * it sheds load.
 */
import type { Datacenters } from '../../proto/agent-link.js';
import type { Logger } from '../../proto/runtime/log.js';
import type { AgentAuthenticator } from '../auth/token-store.js';
import type { Protection } from '../link/protection.js';
import type { ConnectionLimits } from './agent-connection.js';
import type { OverloadThresholds } from './overload.js';

export interface SessionOptions {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** The URL agents should use to reach this server; derived from host and port when empty. */
  readonly advertiseUrl: string;
  /** The token agents present in their hello (the shared token, used when no authenticator is given). */
  readonly token: string;
  /** The agent tokens (a token policy): who may connect as which node, publish and watch what. */
  readonly authenticator?: AgentAuthenticator;
  /** Largest frame from an agent once its hello is accepted. */
  readonly maxFrameBytes: number;
  /** Frame limit of the links to data servers: a publish call to one stays within half of it. */
  readonly linkMaxFrameBytes: number;
  /** Largest frame from an agent before its hello is accepted. */
  readonly maxHelloBytes: number;
  readonly limits: ConnectionLimits;
  /** How long a closed connection's publishers are kept before they are dropped. */
  readonly clientGraceMs: number;
  readonly coalesceMs: number;
  readonly ackTimeoutMs: number;
  readonly maxPushRetries: number;
  readonly reconcileIntervalMs: number;
  /** Most subscriptions one agent connection may hold; more are refused (`limit_exceeded`). */
  readonly maxSubscriptionsPerAgent?: number;
  /** Items per second this session writes to data servers, and the burst (the write path's pacing). */
  readonly writeRatePerSec?: number;
  readonly writeBurst?: number;
  /** Holds grace drops when too many connections go at once (protection mode). */
  readonly protection?: Protection;
  /** When the session asks agents to slow down ({@link DEFAULT_OVERLOAD} when absent). */
  readonly overload?: OverloadThresholds;
  readonly logger: Logger;
  /** This control plane's data center (`MESHREG_DATACENTER`): agents of another one are refused (4015). */
  readonly datacenter?: string;
  /** Period of the federation digest with each peer (`MESHREG_FEDERATION_DIGEST_MS`). */
  readonly federationDigestMs?: number;
}

/** Default of {@link SessionOptions.datacenter}. */
export const DEFAULT_DATACENTER = 'dc1';

/** What the session asks of federation: which data centers exist, and the frame agents are sent. */
export interface FederationView {
  /** Whether `name@dc` keys may be watched (a configured peer). */
  knows(datacenter: string): boolean;
  datacentersFrame(): Datacenters;
}

/** Default of {@link SessionOptions.maxSubscriptionsPerAgent}. */
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_AGENT = 10_000;
