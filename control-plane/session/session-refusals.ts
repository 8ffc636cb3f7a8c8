/**
 * What a session refuses an agent connection: publishing or watching a service an operator
 * blacklisted or the connection's token does not grant, and watching more services than the
 * per-agent cap. A refused subscription is told to the agent; the connection stays up.
 */
import {
  DATACENTERS_PROTOCOL_VERSION,
  type ConfirmResult,
  type Datacenters,
  type Hello,
  type Refused,
  type Registration,
} from '../../proto/agent-link.js';
import { isRemoteKey, splitKey } from '../../proto/datacenter.js';
import type { ErrorCode } from '../../proto/errors.js';
import { splitPublish, type AgentGrants } from '../auth/agent-grants.js';
import type { AgentConnection } from './agent-connection.js';
import type { PushDispatcher } from './push-dispatcher.js';
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
  readonly #datacenter: string;
  /** Whether a data center may be watched (`name@dc`); none set: no federated one may. */
  knows: (datacenter: string) => boolean = () => false;

  constructor(
    switches: SessionSwitches,
    grants: AgentGrants,
    maxSubscriptionsPerAgent: number,
    datacenter: string,
  ) {
    this.#switches = switches;
    this.#grants = grants;
    this.#maxSubscriptionsPerAgent = maxSubscriptionsPerAgent;
    this.#datacenter = datacenter;
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

  /** Refuses the hello of an agent of another data center (`wrong_datacenter`, 4015); absent: accepted. */
  hello(hello: Hello): { code: ErrorCode; reason: string } | undefined {
    const dc = hello.datacenter;
    if (dc === undefined || dc === this.#datacenter) return undefined;
    return {
      code: 'wrong_datacenter',
      reason: `agent of data center ${dc} at a session of ${this.#datacenter}`,
    };
  }

  /** Why `conn` may not subscribe to `key`, or undefined when it may. */
  subscribe(conn: AgentConnection, key: string): SubscribeRefusal | undefined {
    // A federated copy (`web@dc2`) is granted and blacklisted as its service is.
    const { service, datacenter } = splitKey(key);
    const denied = this.#switches.subscribeRefused(service)
      ? `subscribing to "${service}" is blacklisted`
      : this.#grants.subscribeRefusal(conn.id, service);
    if (denied !== undefined) return { code: 'forbidden', message: denied };
    if (datacenter === this.#datacenter)
      return { code: 'not_found', message: `${datacenter} is this data center: watch "${service}"` };
    if (datacenter !== undefined && !this.knows(datacenter))
      return { code: 'not_found', message: `data center ${datacenter} is not a federation peer` };
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

/**
 * Drops every qualified subscription (`web@dc2`) of `conns` that `refused` names a reason for (its
 * data center left the configuration, or stopped exporting the service), telling each agent.
 */
export function withdrawSubscriptions(
  conns: Iterable<AgentConnection>,
  push: PushDispatcher,
  refused: (key: string) => string | undefined,
): void {
  for (const c of conns)
    for (const key of [...c.subscriptions]) {
      const why = isRemoteKey(key) ? refused(key) : undefined;
      if (why === undefined) continue;
      c.subscriptions.delete(key);
      push.unsubscribe(c, key);
      sendRefused(c, key, 'not_found', why);
    }
}

/** Sends `frame` to every ready agent of protocol 4 (older ones would close on it). */
export function sendDatacenters(conns: Iterable<AgentConnection>, frame: Datacenters): void {
  const text = JSON.stringify(frame);
  for (const c of conns)
    if (c.state === 'ready' && (c.protocolVersion ?? 0) >= DATACENTERS_PROTOCOL_VERSION) c.send(text);
}
