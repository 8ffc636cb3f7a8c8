/**
 * The agent's security settings: the local token of its HTTP API and the network policy of its
 * health checks, read once from `MESHREG_*` variables (see the README's Configuration table).
 */
import fs from 'node:fs';
import { boundedInt } from '../../proto/runtime/env-bounds.js';
import { parseCidrList, type Cidr } from '../checks/cidr.js';
import { TargetPolicy, type CheckNetPolicy, type RedirectMode } from '../checks/check-net-policy.js';

/** The health checks' network settings. */
export interface CheckNetSettings {
  /** `MESHREG_CHECK_ALLOW`; `undefined` when unset (targets unrestricted). */
  readonly allow: readonly Cidr[] | undefined;
  readonly redirects: RedirectMode;
  readonly maxBodyBytes: number;
}

export interface SecuritySettings {
  /** Writes to the local HTTP API need this token; '' leaves them open (Consul's default). */
  readonly localToken: string;
  readonly checkNet: CheckNetSettings;
}

/** `[default, min, max]` of the check body cap. */
export const CHECK_BODY_BOUNDS = { def: 64 * 1024, min: 1024, max: 16 * 1024 * 1024 } as const;

/** The rows of these variables in the configuration table. */
export const SECURITY_VARS = [
  {
    name: 'MESHREG_AGENT_LOCAL_TOKEN',
    default: '',
    doc: 'When set, every write to the agent HTTP API (register, deregister, checks, leave) needs it in X-Consul-Token or Authorization: Bearer; reads stay open. Unset: local writes are open.',
  },
  {
    name: 'MESHREG_AGENT_LOCAL_TOKEN_FILE',
    default: '',
    doc: 'A file holding the local token (instead of MESHREG_AGENT_LOCAL_TOKEN; not both).',
  },
  {
    name: 'MESHREG_CHECK_ALLOW',
    default: '',
    doc: 'CIDRs, comma-separated: when set, HTTP and TCP check targets must resolve into loopback, the addresses of this host or these (400 at registration, refused again at each connect).',
  },
  {
    name: 'MESHREG_CHECK_REDIRECTS',
    default: 'same-origin',
    doc: 'Redirects an HTTP check follows: `same-origin` (same scheme, host and port, at most 3) or `none`.',
  },
  {
    name: 'MESHREG_CHECK_MAX_BODY_BYTES',
    default: String(CHECK_BODY_BOUNDS.def),
    doc: `Most bytes of a response body an HTTP check reads (${String(CHECK_BODY_BOUNDS.min)}..${String(CHECK_BODY_BOUNDS.max)}).`,
  },
] as const;

/** Reads the settings; a bad value is an error naming its variable. */
export function readSecuritySettings(env: NodeJS.ProcessEnv): SecuritySettings {
  return Object.freeze({ localToken: readLocalToken(env), checkNet: Object.freeze(readCheckNet(env)) });
}

function readLocalToken(env: NodeJS.ProcessEnv): string {
  const direct = env['MESHREG_AGENT_LOCAL_TOKEN'] ?? '';
  const file = env['MESHREG_AGENT_LOCAL_TOKEN_FILE'] ?? '';
  if (direct !== '' && file !== '')
    throw new Error('MESHREG_AGENT_LOCAL_TOKEN and MESHREG_AGENT_LOCAL_TOKEN_FILE are both set: set one');
  if (file === '') return direct.trim();
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(
      `MESHREG_AGENT_LOCAL_TOKEN_FILE: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  const token = text.trim();
  if (token === '') throw new Error('MESHREG_AGENT_LOCAL_TOKEN_FILE: the file is empty');
  return token;
}

function readCheckNet(env: NodeJS.ProcessEnv): CheckNetSettings {
  const allowText = (env['MESHREG_CHECK_ALLOW'] ?? '').trim();
  let allow: readonly Cidr[] | undefined;
  if (allowText !== '') {
    const parsed = parseCidrList(allowText);
    if (!parsed.ok) throw new Error(`MESHREG_CHECK_ALLOW: ${parsed.errors.join('; ')}`);
    allow = Object.freeze(parsed.value);
  }
  const redirects = (env['MESHREG_CHECK_REDIRECTS'] ?? '').trim() || 'same-origin';
  if (redirects !== 'same-origin' && redirects !== 'none')
    throw new Error('MESHREG_CHECK_REDIRECTS must be same-origin or none');
  const { def, min, max } = CHECK_BODY_BOUNDS;
  const maxBodyBytes = boundedInt(env, 'MESHREG_CHECK_MAX_BODY_BYTES', def, min, max);
  return { allow, redirects, maxBodyBytes };
}

/** The probes' policy for these settings (this host's addresses read now). */
export function checkNetPolicy(s: CheckNetSettings): CheckNetPolicy {
  return Object.freeze({
    targets: new TargetPolicy(s.allow),
    redirects: s.redirects,
    maxBodyBytes: s.maxBodyBytes,
  });
}
