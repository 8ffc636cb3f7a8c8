/**
 * What a session refuses an agent connection: publishing or watching a service an operator
 * blacklisted or the connection's token does not grant, and watching more services than the
 * per-agent cap. A refused subscription is told to the agent; the connection stays up.
 */
import type { ConfirmResult, Refused, Registration } from '../../proto/agent-link.js';
import type { ErrorCode } from '../../proto/errors.js';
import { splitPublish, type AgentGrants } from '../auth/agent-grants.js';
import type { AgentConnection } from './agent-connection.js';
import type { SessionSwitches } from './switches.js';

/** Why a subscription is refused. */
export interface SubscribeRefusal {
  readonly code: ErrorCode;
  readonly message: string;
}

export class SessionRefusals {
  readonly #switches: SessionSwitches;
  readonly #grants: AgentGrants;
  readonly #maxSubscriptionsPerAgent: number;

  constructor(switches: SessionSwitches, grants: AgentGrants, maxSubscriptionsPerAgent: number) {
    this.#switches = switches;
    this.#grants = grants;
    this.#maxSubscriptionsPerAgent = maxSubscriptionsPerAgent;
  }

  /** Splits a publish into the registrations allowed and the `forbidden` results of the others. */
  publish(
    connId: string,
    registrations: readonly Registration[],
  ): { allowed: Registration[]; refused: ConfirmResult[] } {
    return splitPublish(registrations, (service) =>
      this.#switches.publishRefused(service)
        ? `publishing "${service}" is blacklisted`
        : this.#grants.publishRefusal(connId, service),
    );
  }

  /** Why `conn` may not subscribe to `key`, or undefined when it may. */
  subscribe(conn: AgentConnection, key: string): SubscribeRefusal | undefined {
    const denied = this.#switches.subscribeRefused(key)
      ? `subscribing to "${key}" is blacklisted`
      : this.#grants.subscribeRefusal(conn.id, key);
    if (denied !== undefined) return { code: 'forbidden', message: denied };
    // One connection cannot grow the session (and the data servers' interest) without bound. The
    // catalog is one subscription at most, so it is never refused; a re-subscription is not new.
    const max = this.#maxSubscriptionsPerAgent;
    if (!conn.subscriptions.has(key) && conn.subscriptions.size >= max)
      return {
        code: 'limit_exceeded',
        message: `this agent already watches ${max} services (MESHREG_SESSION_MAX_SUBSCRIPTIONS_PER_AGENT)`,
      };
    return undefined;
  }
}

/** Tells the agent a subscription was refused; the connection stays up. */
export function sendRefused(conn: AgentConnection, service: string, code: ErrorCode, message: string): void {
  const refused: Refused = { type: 'refused', service, error: { code, message } };
  conn.send(JSON.stringify(refused));
}
