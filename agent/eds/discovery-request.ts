/**
 * Decodes a DiscoveryRequest received as proto3 JSON (REST EDS). Envoy prints proto field names
 * (snake_case) but any proto3 JSON parser must also accept lowerCamelCase (proto3 JSON mapping),
 * so both are read; giving one field in both spellings is rejected by naming both.
 */
import { SERVICE_NAME_PATTERN } from '../../proto/instance.js';
import {
  Issues,
  at,
  readArray,
  readInt,
  readObject,
  readString,
  type Decoded,
} from '../../proto/validate.js';
import { readCallerJson, type XdsCaller } from './caller.js';

/** The parts of a DiscoveryRequest the server acts on. */
export interface DiscoveryRequestView {
  /** The version the client last accepted; "" on its first request. */
  readonly versionInfo: string;
  /** Node identity; "" when the client sent no node (all such clients share one view). */
  readonly nodeId: string;
  /** What the node said of its locality and scope (`node.locality`, `node.metadata`). */
  readonly caller: XdsCaller;
  readonly resourceNames: readonly string[];
  /** "" when absent; callers fill in the type implied by the endpoint. */
  readonly typeUrl: string;
  readonly responseNonce: string;
  /** Present on a NACK (xds_protocol "ACK and NACK semantics"). */
  readonly errorDetail?: { readonly code: number; readonly message: string };
}

/** Limits that keep one request small. */
export const DISCOVERY_REQUEST_LIMITS = Object.freeze({
  maxResourceNames: 1000,
  maxVersionLength: 128,
  maxNodeIdLength: 256,
});

const FIELDS = {
  versionInfo: 'version_info',
  node: 'node',
  resourceNames: 'resource_names',
  typeUrl: 'type_url',
  responseNonce: 'response_nonce',
  errorDetail: 'error_detail',
} as const;

/** Decodes `raw`; every problem comes back with its path (`resource_names[1]: ...`). */
export function decodeDiscoveryRequest(raw: unknown): Decoded<DiscoveryRequestView> {
  const issues = new Issues();
  const o = readObject(issues, raw, '');
  if (o === undefined) return issues.result<DiscoveryRequestView>(undefined);
  const field = (camel: keyof typeof FIELDS): unknown => pick(issues, o, camel, FIELDS[camel]);
  const versionInfo =
    readString(issues, field('versionInfo'), FIELDS.versionInfo, {
      maxLength: DISCOVERY_REQUEST_LIMITS.maxVersionLength,
    }) ?? '';
  const { nodeId, caller } = readNode(issues, field('node'));
  const resourceNames =
    readArray(
      issues,
      field('resourceNames'),
      FIELDS.resourceNames,
      (item, path) =>
        readString(issues, item, path, {
          required: true,
          maxLength: 256,
          pattern: SERVICE_NAME_PATTERN,
          patternHint: 'must be a service name',
        }),
      { maxItems: DISCOVERY_REQUEST_LIMITS.maxResourceNames },
    ) ?? [];
  const typeUrl = readString(issues, field('typeUrl'), FIELDS.typeUrl, { maxLength: 256 }) ?? '';
  const responseNonce =
    readString(issues, field('responseNonce'), FIELDS.responseNonce, { maxLength: 128 }) ?? '';
  const errorDetail = readErrorDetail(issues, field('errorDetail'));
  const value: DiscoveryRequestView = {
    versionInfo,
    nodeId,
    caller,
    resourceNames,
    typeUrl,
    responseNonce,
    ...(errorDetail === undefined ? {} : { errorDetail }),
  };
  return issues.result(value);
}

/** Reads a field under its proto name or its JSON name, refusing both at once. */
function pick(issues: Issues, o: Record<string, unknown>, camel: string, snake: string): unknown {
  const hasSnake = o[snake] !== undefined;
  const hasCamel = camel !== snake && o[camel] !== undefined;
  if (hasSnake && hasCamel) {
    issues.add(snake, `give either ${snake} or ${camel}, not both`);
    return undefined;
  }
  return hasCamel ? o[camel] : o[snake];
}

function readNode(issues: Issues, raw: unknown): { nodeId: string; caller: XdsCaller } {
  if (raw === undefined || raw === null) return { nodeId: '', caller: {} };
  const node = readObject(issues, raw, FIELDS.node);
  if (node === undefined) return { nodeId: '', caller: {} };
  const nodeId =
    readString(issues, node['id'], at(FIELDS.node, 'id'), {
      maxLength: DISCOVERY_REQUEST_LIMITS.maxNodeIdLength,
    }) ?? '';
  return { nodeId, caller: readCallerJson(issues, node, FIELDS.node) };
}

function readErrorDetail(issues: Issues, raw: unknown): DiscoveryRequestView['errorDetail'] {
  if (raw === undefined || raw === null) return undefined;
  const o = readObject(issues, raw, FIELDS.errorDetail);
  if (o === undefined) return undefined;
  const code = readInt(issues, o['code'], at(FIELDS.errorDetail, 'code'), { min: 0, max: 16 }) ?? 0;
  const message =
    readString(issues, o['message'], at(FIELDS.errorDetail, 'message'), { maxLength: 4096 }) ?? '';
  return { code, message };
}
