/**
 * The secrets part of the control-plane configuration: which token variables and files are set,
 * checked for conflicts, and the refusal to start without any agent token (outside `meshreg dev`).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { boundedInt } from '../../proto/runtime/env-bounds.js';

/** Where the tokens come from (files are read and reloaded by the token store). */
export interface TokenFiles {
  /** `MESHREG_TOKEN_POLICY_FILE`; '' when unset. */
  readonly policyFile: string;
  /** `MESHREG_TOKEN_FILE`; '' when unset. */
  readonly tokenFile: string;
  /** `MESHREG_ADMIN_TOKEN_FILE`; '' when unset. */
  readonly adminTokenFile: string;
  /** Quiet time after a token file changed before it is reloaded. */
  readonly reloadDebounceMs: number;
}

export interface TokenSettings {
  /** `MESHREG_TOKEN` ('' when agents' tokens come from a file or the policy only). */
  readonly token: string;
  readonly adminToken: string;
  readonly clusterToken: string;
  readonly files: TokenFiles;
}

/** Bounds of `MESHREG_TOKEN_RELOAD_DEBOUNCE_MS`. */
export const RELOAD_DEBOUNCE_BOUNDS = { min: 0, max: 60_000 } as const;

function value(env: NodeJS.ProcessEnv, name: string): string {
  return (env[name] ?? '').trim();
}

/** A secret from `name` or `${name}_FILE` (trimmed), refusing both; '' when neither is set. */
function either(env: NodeJS.ProcessEnv, name: string): { inline: string; file: string } {
  const inline = env[name] ?? '';
  const file = value(env, `${name}_FILE`);
  if (inline !== '' && file !== '') throw new Error(`set ${name} or ${name}_FILE, not both`);
  return { inline, file };
}

/** Reads a secret file once at start (trimmed); a missing or empty file refuses the start. */
export function readSecretOnce(file: string, variable: string): string {
  let secret: string;
  try {
    secret = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new Error(`${variable}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (secret === '') throw new Error(`${variable}: ${file} is empty`);
  return secret;
}

/**
 * Reads the token variables. Outside `meshreg dev` a server with no agent token at all (no
 * `MESHREG_TOKEN`, `MESHREG_TOKEN_FILE` or policy file) refuses to start: there is no default secret.
 * The cluster token defaults to the shared agent token; with only a policy file it must be set.
 */
export function readTokenSettings(env: NodeJS.ProcessEnv, opts: { dev: boolean }): TokenSettings {
  const agent = either(env, 'MESHREG_TOKEN');
  const admin = either(env, 'MESHREG_ADMIN_TOKEN');
  const cluster = either(env, 'MESHREG_CLUSTER_TOKEN');
  const policyFile = value(env, 'MESHREG_TOKEN_POLICY_FILE');
  let token = agent.inline;
  if (token === '' && agent.file === '' && policyFile === '') {
    if (!opts.dev)
      throw new Error(
        'no agent token: set MESHREG_TOKEN, MESHREG_TOKEN_FILE or MESHREG_TOKEN_POLICY_FILE (there is no default secret)',
      );
    token = randomUUID();
  }
  const shared = agent.file === '' ? token : readSecretOnce(agent.file, 'MESHREG_TOKEN_FILE');
  const clusterToken =
    cluster.file !== ''
      ? readSecretOnce(cluster.file, 'MESHREG_CLUSTER_TOKEN_FILE')
      : cluster.inline === ''
        ? shared
        : cluster.inline;
  if (clusterToken === '')
    throw new Error(
      'MESHREG_CLUSTER_TOKEN (or MESHREG_CLUSTER_TOKEN_FILE) is required when agent tokens come only from MESHREG_TOKEN_POLICY_FILE',
    );
  return {
    token,
    adminToken: admin.inline,
    clusterToken,
    files: Object.freeze({
      policyFile,
      tokenFile: agent.file,
      adminTokenFile: admin.file,
      reloadDebounceMs: boundedInt(
        env,
        'MESHREG_TOKEN_RELOAD_DEBOUNCE_MS',
        200,
        RELOAD_DEBOUNCE_BOUNDS.min,
        RELOAD_DEBOUNCE_BOUNDS.max,
      ),
    }),
  };
}
