/**
 * What a health check is once decoded: a union by kind, each member with exactly the fields its
 * probe needs and durations already inside their bounds. Only the edge decoder
 * (`agent/consul/consul-check.ts`) builds one, so the runner trusts it and switches on `kind`.
 */
import type { Health } from '../../proto/instance.js';
import type { CheckNetPolicy } from './check-net-policy.js';

export type CheckKind = CheckSpec['kind'];

export interface HttpTarget {
  readonly url: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, readonly string[]>>;
  readonly body: string;
  readonly tlsSkipVerify: boolean;
  readonly disableRedirects: boolean;
}

/** What every kind of check has. */
interface CheckBase {
  readonly id: string;
  readonly name: string;
  readonly notes: string;
  /** '' for a node-level check (it counts for every service of the node). */
  readonly serviceId: string;
  readonly initialStatus: Health;
  readonly successBeforePassing: number;
  readonly failuresBeforeWarning: number;
  readonly failuresBeforeCritical: number;
  /** Deregister the service after this long critical; undefined = never. */
  readonly deregisterAfterMs?: number;
  readonly outputMaxSize: number;
  /** The definition as sent, kept so it can be persisted and decoded again. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** Probed every `intervalMs` (≥ the configured minimum), each probe bounded by `timeoutMs` (≥ 1). */
interface ProbeTiming {
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

export interface HttpCheckSpec extends CheckBase, ProbeTiming {
  readonly kind: 'http';
  readonly http: HttpTarget;
}

export interface TcpCheckSpec extends CheckBase, ProbeTiming {
  readonly kind: 'tcp';
  /** `host:port`. */
  readonly tcp: string;
}

export interface TtlCheckSpec extends CheckBase {
  readonly kind: 'ttl';
  /** Critical unless refreshed within this (1 ms .. 7 days). */
  readonly ttlMs: number;
}

/** A valid check, by kind. */
export type CheckSpec = HttpCheckSpec | TcpCheckSpec | TtlCheckSpec;

/** The checks that probe on an interval. */
export type ProbedCheckSpec = HttpCheckSpec | TcpCheckSpec;

/** The agent's policy applied while decoding (from its configuration). */
export interface CheckRules {
  /** Shorter intervals are raised to this (Consul: 1 s). */
  readonly minIntervalMs: number;
  /** Shorter DeregisterCriticalServiceAfter values are raised to this (Consul: 1 min). */
  readonly minDeregisterMs: number;
  /** Where checks may connect (refused at decoding for a literal address); unrestricted when absent. */
  readonly net?: CheckNetPolicy;
}

/** Consul's own rules, for decoders called without the agent's configuration. */
export const CONSUL_CHECK_RULES: CheckRules = Object.freeze({ minIntervalMs: 1000, minDeregisterMs: 60_000 });
