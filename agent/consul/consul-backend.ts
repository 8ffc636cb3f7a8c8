/**
 * What the Consul handlers need from the agent (the agent implements it; tests build it from the
 * real local registrations and view, with no network).
 */
import type { CheckRules } from '../checks/check-definition.js';
import type { LocalServices, NodeIdentity } from '../local/local-services.js';
import type { ServiceView } from '../view/service-view.js';
import type { DatacenterReads } from './consul-datacenters.js';
import type { RegisterRequest } from './consul-register.js';

/** The link's health as reads report it (Consul's known-leader and last-contact headers). */
export interface UpstreamStatus {
  readonly connected: boolean;
  /** Milliseconds since the link was last heard from; 0 while connected. */
  readonly lastContactMs: number;
  /** Seconds since the link went down; 0 while connected. */
  readonly offlineForSec: number;
  /** `host:port` of the session server in use, '' when offline. */
  readonly leader: string;
}

/** What the Consul handlers need from the agent. */
export interface ConsulBackend {
  readonly node: NodeIdentity;
  readonly datacenter: string;
  readonly view: ServiceView;
  readonly local: LocalServices;
  readonly firstReadWaitMs: number;
  /** The federated data centers the session reported; absent: only the local one is known. */
  readonly datacenters?: DatacenterReads | undefined;
  /** The agent's check policy, applied while decoding a registration's checks. */
  readonly checkRules: CheckRules;
  register(req: RegisterRequest, replaceExistingChecks: boolean): Promise<void>;
  deregister(id: string): Promise<void>;
  upstream(): UpstreamStatus;
  /** Why the control plane refused to let this host watch `service` (a blacklist), if it did. */
  subscriptionRefusal(service: string): { code: string; message: string } | undefined;
}
