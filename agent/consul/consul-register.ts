/**
 * Decodes Consul's service definition (`PUT /v1/agent/service/register`, and definition files),
 * its checks included: what passes is valid as a whole, so registering it cannot fail validation.
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
import { CONSUL_CHECK_RULES, type CheckRules, type CheckSpec } from '../checks/check-definition.js';
import type { ServiceDefinition } from '../local/local-services.js';
import { readServiceChecks } from './consul-check.js';
import { ADDRESSABLE_ID, ADDRESSABLE_ID_HINT, foldKeys } from './consul-fields.js';

export interface RegisterRequest {
  readonly def: ServiceDefinition;
  /** The service's checks (`Check` then `Checks`), decoded. */
  readonly checks: readonly CheckSpec[];
}

/** The registration, or every problem with its path (`Name`, `Checks[1].Interval`, ...). */
export function decodeServiceDefinition(
  raw: unknown,
  rules: CheckRules = CONSUL_CHECK_RULES,
): Decoded<RegisterRequest> {
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
  const serviceId = id !== undefined && id !== '' ? id : (name ?? '');
  let specs: CheckSpec[] = [];
  // Too many checks are refused whole: no work is spent decoding them.
  if (checks.length > INSTANCE_LIMITS.maxChecks)
    issues.add('Checks', `must have at most ${INSTANCE_LIMITS.maxChecks} checks`);
  // Without a valid name the checks are still decoded for their own errors, under a stand-in ID.
  else specs = readServiceChecks(issues, checks, { id: serviceId || '(service)', name: name ?? '' }, rules);
  if (name === undefined) return issues.result<RegisterRequest>(undefined);
  const def: ServiceDefinition = {
    id: serviceId,
    name,
    tags,
    address,
    port,
    meta,
    weights,
    enableTagOverride,
  };
  return issues.result<RegisterRequest>({ def, checks: specs });
}
