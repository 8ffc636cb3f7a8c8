/**
 * Who asks for endpoints: the caller's locality and scope, read from the `node` of its first
 * DiscoveryRequest (envoy/config/core/v3/base.proto `Node.locality`, `Node.metadata`). The answer
 * depends on both (priority 0 is the caller's zone; remote data centers only for scope `global`),
 * so the xDS layer builds one answer per resolved caller and shares it among every node alike.
 *
 * - Locality: `node.locality.{region, zone}`; absent or both empty → the agent's own
 *   `MESHREG_REGION`/`MESHREG_ZONE` (an app's proxy normally runs on the agent's host).
 * - Scope: `node.metadata["meshreg.scope"]`, one of `zone`, `datacenter` (the default), `global`.
 */
import { SCOPES, type Scope } from '../../proto/datacenter.js';
import { MeshregError } from '../../proto/errors.js';
import { Issues, at, isRecord, readObject, readOneOf, readString } from '../../proto/validate.js';

/** The node metadata key holding the caller's scope. */
export const SCOPE_METADATA_KEY = 'meshreg.scope';

/** Scope of a caller that does not name one. */
export const DEFAULT_XDS_SCOPE: Scope = 'datacenter';

/** Longest region or zone accepted from a node (the same bound as an instance's). */
const MAX_LOCALITY_LENGTH = 128;

/** A region and zone; empty strings mean unknown. */
export interface Locality {
  readonly region: string;
  readonly zone: string;
}

/** What a node said about itself; each part is undefined when it said nothing. */
export interface XdsCaller {
  readonly locality?: Locality;
  readonly scope?: Scope;
}

/** A caller with the agent's defaults applied: what an answer is built for. */
export interface ResolvedCaller extends Locality {
  readonly scope: Scope;
}

/** Applies the defaults: the agent's locality when the node gave none (or an empty one), scope `datacenter`. */
export function resolveCaller(caller: XdsCaller | undefined, agent: Locality): ResolvedCaller {
  const given = caller?.locality;
  const locality = given === undefined || (given.region === '' && given.zone === '') ? agent : given;
  return { region: locality.region, zone: locality.zone, scope: caller?.scope ?? DEFAULT_XDS_SCOPE };
}

/** A stable key of a resolved caller: callers with equal keys get identical answers. */
export function callerKey(caller: ResolvedCaller): string {
  return JSON.stringify([caller.region, caller.zone, caller.scope]);
}

/** True when the node said nothing about locality or scope (it shares the node-id-only cache key). */
export function isUnspecified(caller: XdsCaller | undefined): boolean {
  return caller?.locality === undefined && caller?.scope === undefined;
}

/**
 * Reads locality and scope from a proto3-JSON `node` (REST). Both `sub_zone` and `subZone` are
 * accepted and ignored (meshreg has no sub-zones); other metadata keys are Envoy's and ignored.
 */
export function readCallerJson(issues: Issues, node: Record<string, unknown>, path: string): XdsCaller {
  const locality = readLocality(issues, node['locality'], at(path, 'locality'));
  const metadata =
    node['metadata'] === undefined || node['metadata'] === null
      ? undefined
      : readObject(issues, node['metadata'], at(path, 'metadata'));
  const scope =
    metadata === undefined
      ? undefined
      : readOneOf(issues, metadata[SCOPE_METADATA_KEY], at(at(path, 'metadata'), SCOPE_METADATA_KEY), SCOPES);
  return { ...(said(locality) ? { locality } : {}), ...(scope === undefined ? {} : { scope }) };
}

/** An empty locality (both fields empty, as an empty message decodes) says nothing. */
function said(locality: Locality | undefined): locality is Locality {
  return locality !== undefined && (locality.region !== '' || locality.zone !== '');
}

function readLocality(issues: Issues, raw: unknown, path: string): Locality | undefined {
  if (raw === undefined || raw === null) return undefined;
  const o = readObject(issues, raw, path);
  if (o === undefined) return undefined;
  const rules = { maxLength: MAX_LOCALITY_LENGTH };
  const region = readString(issues, o['region'], at(path, 'region'), rules) ?? '';
  const zone = readString(issues, o['zone'], at(path, 'zone'), rules) ?? '';
  return { region, zone };
}

/**
 * Reads locality and scope from a `node` as the gRPC loader decodes it (field names as in the
 * .proto; `metadata` a google.protobuf.Struct: `{fields: {key: {stringValue, kind}}}`).
 * A scope that is not a known one is a protocol error for that stream.
 */
export function readCallerGrpc(node: unknown): XdsCaller | MeshregError {
  if (!isRecord(node)) return {};
  const issues = new Issues();
  const locality = readLocality(issues, node['locality'], 'node.locality');
  const fields = isRecord(node['metadata']) ? node['metadata']['fields'] : undefined;
  const value = isRecord(fields) ? fields[SCOPE_METADATA_KEY] : undefined;
  const path = at('node.metadata', SCOPE_METADATA_KEY);
  let scope: Scope | undefined;
  if (isRecord(value)) {
    // The loader takes google.protobuf.Value from protobufjs's built-in copy, whose field names are
    // camelCase (`stringValue`), unlike the Envoy protos; both spellings are read. A Value of
    // another kind (a number, a list) is named by its kind and so refused like a bad string.
    const kind = value['kind'];
    const isString = kind === undefined || kind === 'stringValue' || kind === 'string_value';
    const text = isString ? (value['stringValue'] ?? value['string_value']) : kind;
    scope = readOneOf(issues, text ?? '', path, SCOPES);
  }
  if (!issues.empty) {
    const detail = issues.list.map((e) => `${e.path}: ${e.message}`).join('; ');
    return new MeshregError('invalid_argument', detail, { fields: issues.list });
  }
  return { ...(said(locality) ? { locality } : {}), ...(scope === undefined ? {} : { scope }) };
}
