/**
 * Decodes Consul's service definition (`PUT /v1/agent/service/register`, and definition files).
 */
import { INSTANCE_LIMITS, SERVICE_NAME_PATTERN } from '../../proto/instance.js';
import {
  Issues,
  readArray,
  readBool,
  readInt,
  readObject,
  readString,
  readStringMap,
  type Decoded,
} from '../../proto/validate.js';
import type { ServiceDefinition } from '../local/local-services.js';
import { ADDRESSABLE_ID, ADDRESSABLE_ID_HINT, foldKeys } from './consul-fields.js';

export interface RegisterRequest {
  readonly def: ServiceDefinition;
  /** The check definitions as sent (`Check` then `Checks`), for the check subsystem to decode. */
  readonly checks: readonly unknown[];
}

export function decodeServiceDefinition(raw: unknown): Decoded<RegisterRequest> {
  const issues = new Issues();
  const o = readObject(issues, raw, '');
  if (o === undefined) return issues.result<RegisterRequest>(undefined);
  const f = foldKeys(o);
  const name = readString(issues, f.get('name'), 'Name', {
    required: true,
    maxLength: INSTANCE_LIMITS.maxNameLength,
    pattern: SERVICE_NAME_PATTERN,
    patternHint: 'must start with a letter or digit and hold only letters, digits, ".", "_" and "-"',
  });
  const id = readString(issues, f.get('id'), 'ID', {
    maxLength: INSTANCE_LIMITS.maxIdLength,
    pattern: ADDRESSABLE_ID,
    patternHint: ADDRESSABLE_ID_HINT,
  });
  const tags =
    readArray(
      issues,
      f.get('tags'),
      'Tags',
      (t, p) => readString(issues, t, p, { maxLength: INSTANCE_LIMITS.maxTagLength }),
      {
        maxItems: INSTANCE_LIMITS.maxTags,
      },
    ) ?? [];
  const address = readString(issues, f.get('address'), 'Address', { maxLength: 256 }) ?? '';
  const port = readInt(issues, f.get('port'), 'Port', { min: 0, max: 65535 }) ?? 0;
  const meta =
    readStringMap(issues, f.get('meta'), 'Meta', { maxEntries: INSTANCE_LIMITS.maxMetaEntries }) ?? {};
  const enableTagOverride = readBool(issues, f.get('enabletagoverride'), 'EnableTagOverride') ?? false;
  let weights = { passing: 1, warning: 1 };
  const w = f.get('weights');
  if (w !== undefined && w !== null) {
    const wo = readObject(issues, w, 'Weights');
    if (wo !== undefined) {
      const wf = foldKeys(wo);
      weights = {
        passing: readInt(issues, wf.get('passing'), 'Weights.Passing', { min: 1, max: 65535 }) ?? 1,
        warning: readInt(issues, wf.get('warning'), 'Weights.Warning', { min: 0, max: 65535 }) ?? 1,
      };
    }
  }
  const checks: unknown[] = [];
  const one = f.get('check');
  if (one !== undefined && one !== null) checks.push(one);
  const many = f.get('checks');
  if (many !== undefined && many !== null) {
    if (Array.isArray(many)) checks.push(...(many as unknown[]));
    else issues.add('Checks', 'must be an array');
  }
  if (checks.length > INSTANCE_LIMITS.maxChecks)
    issues.add('Checks', `must have at most ${INSTANCE_LIMITS.maxChecks} checks`);
  if (name === undefined) return issues.result<RegisterRequest>(undefined);
  const def: ServiceDefinition = {
    id: id !== undefined && id !== '' ? id : name,
    name,
    tags,
    address,
    port,
    meta,
    weights,
    enableTagOverride,
  };
  return issues.result<RegisterRequest>({ def, checks });
}
