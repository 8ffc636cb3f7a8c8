/**
 * Data centers, zones and scopes: the names, and how a subscription to another data center's copy
 * of a service is keyed.
 *
 * A service of the local data center is watched by its name (`web`). The copy of a service that a
 * federated data center exports is watched under a qualified key, `web@dc2`: the same push path,
 * acks and versions, kept apart from the local datum (invariant 8). `@` never occurs in a service
 * name ({@link SERVICE_NAME_PATTERN}), so a key is qualified exactly when it holds one.
 */
import { SERVICE_NAME_PATTERN } from './instance.js';
import { readString, type Issues } from './validate.js';

/** Data center names: what Consul accepts (letters, digits, `-` and `_`), at most 64 characters. */
export const DATACENTER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** The separator of a qualified key (`service@datacenter`). */
export const DC_SEPARATOR = '@';

/** A watch key: a service name, optionally qualified by a data center (`web@dc2`). */
export const WATCH_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9][A-Za-z0-9_-]{0,63})?$/;

/** Rules of a watch key on the wire (subscribe, unsubscribe, acks, pushes). */
export const WATCH_KEY_RULES = {
  required: true,
  maxLength: 256 + 1 + 64,
  pattern: WATCH_KEY_PATTERN,
  patternHint: 'must be a service name, optionally followed by @ and a data center name',
} as const;

/** Rules of a data center name wherever one is read. */
export const DATACENTER_RULES = {
  maxLength: 64,
  pattern: DATACENTER_PATTERN,
  patternHint: 'must be a data center name (letters, digits, "-" and "_")',
} as const;

/** Reads an optional data center name into `issues`. */
export function readDatacenter(
  issues: Issues,
  raw: unknown,
  path: string,
  required = false,
): string | undefined {
  return readString(issues, raw, path, { ...DATACENTER_RULES, required });
}

export function isDatacenterName(s: string): boolean {
  return DATACENTER_PATTERN.test(s);
}

/** The key under which `datacenter`'s copy of `service` is watched. */
export function remoteKey(service: string, datacenter: string): string {
  return `${service}${DC_SEPARATOR}${datacenter}`;
}

/** A watch key split: the service, and the data center when the key is qualified. */
export interface SplitKey {
  readonly service: string;
  /** Undefined for a key of the local data center. */
  readonly datacenter: string | undefined;
}

export function splitKey(key: string): SplitKey {
  const at = key.indexOf(DC_SEPARATOR);
  if (at < 0) return { service: key, datacenter: undefined };
  return { service: key.slice(0, at), datacenter: key.slice(at + 1) };
}

/** True for a key of another data center's copy (`web@dc2`). */
export function isRemoteKey(key: string): boolean {
  return key.includes(DC_SEPARATOR);
}

/** True when `service` is a plain service name (no qualifier). */
export function isServiceName(service: string): boolean {
  return service.length <= 256 && SERVICE_NAME_PATTERN.test(service);
}

/**
 * A subscription's scope, as SOFARegistry has it: `zone` (instances of the caller's zone only),
 * `datacenter` (the default: every zone of the local data center), `global` (the local data center
 * plus every federated data center that exports the service).
 */
export const SCOPES = ['zone', 'datacenter', 'global'] as const;
export type Scope = (typeof SCOPES)[number];

/** Consul's answer (HTTP 500, plain text) for a data center it has no route to. */
export const NO_PATH_TO_DATACENTER = 'No path to datacenter';
