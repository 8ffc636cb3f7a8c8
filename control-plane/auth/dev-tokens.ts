/**
 * `meshreg dev`'s tokens: it needs no configuration, so it generates the agent token and an admin
 * token it was not given, and writes each to a file (mode 0600) in a private directory (mode 0700),
 * so that a second agent can join (`MESHREG_TOKEN_FILE=<file>`) and `meshreg ctl` can operate it.
 * There is no default secret: every run gets new ones.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ControlPlaneConfig } from '../config.js';

/** The dev configuration with its generated tokens, and where they were written. */
export interface DevTokens {
  readonly config: ControlPlaneConfig;
  /** The private directory holding the files; '' when nothing was generated. */
  readonly dir: string;
  /** The file of the generated agent token; '' when the agent token was configured. */
  readonly agentTokenFile: string;
  /** The file of the generated admin token; '' when admin tokens were configured. */
  readonly adminTokenFile: string;
  /** One line saying where the tokens are (never the tokens), for the dev process's output. */
  readonly notice: string;
  /** Removes the files (at stop: the tokens die with the process). */
  remove(): void;
}

/** A new random secret: 32 bytes, base64url. */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Generates what `config` lacks: the agent token when no agent token was configured (config.ts then
 * made one up), the admin token when none was (neither variable nor policy), and writes them.
 */
export function devTokens(env: NodeJS.ProcessEnv, config: ControlPlaneConfig): DevTokens {
  const agentGenerated =
    (env['MESHREG_TOKEN'] ?? '') === '' && config.tokens.tokenFile === '' && config.tokens.policyFile === '';
  const adminGenerated =
    config.admin.token === '' && config.tokens.adminTokenFile === '' && config.tokens.policyFile === '';
  if (!agentGenerated && !adminGenerated)
    return { config, dir: '', agentTokenFile: '', adminTokenFile: '', notice: '', remove: () => undefined };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshreg-dev-'));
  const write = (name: string, secret: string): string => {
    const file = path.join(dir, name);
    writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    return file;
  };
  const agentTokenFile = agentGenerated ? write('agent-token', config.token) : '';
  const adminToken = adminGenerated ? newSecret() : config.admin.token;
  const adminTokenFile = adminGenerated ? write('admin-token', adminToken) : '';
  const parts = [
    agentTokenFile === ''
      ? ''
      : `agent token in ${agentTokenFile} (another agent: MESHREG_TOKEN_FILE=${agentTokenFile})`,
    adminTokenFile === '' ? '' : `admin token in ${adminTokenFile}`,
  ].filter((p) => p !== '');
  return {
    config: Object.freeze({ ...config, admin: Object.freeze({ ...config.admin, token: adminToken }) }),
    dir,
    agentTokenFile,
    adminTokenFile,
    notice: `meshreg dev tokens: ${parts.join('; ')}`,
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
