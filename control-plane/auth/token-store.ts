/**
 * The tokens a server accepts, loaded from the token policy file, the shared `MESHREG_TOKEN` (or its
 * file) and the admin token (or its file), and reloaded on SIGHUP or when one of those files changes.
 *
 * A presented secret is hashed once and compared with every token's digest in constant time, all
 * candidates every time, so neither the secret nor which token matched shows in the timing. Secrets
 * are never logged: a token is known by its name. A reload that fails (unreadable file, bad policy)
 * keeps the tokens in force and logs every error with its path.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../proto/runtime/log.js';
import { describe, type Decoded, type FieldError } from '../../proto/validate.js';
import type { AdminAuth, AdminCaller } from '../admin/ops-http.js';
import { digestsEqual, secretDigest } from '../link/auth.js';
import { ALL_SERVICES, decodeTokenPolicy, type TokenGrant, type TokenPolicyFile } from './token-policy.js';

/** Where the tokens come from; '' means unset. */
export interface TokenSources {
  /** `MESHREG_TOKEN_POLICY_FILE`: the policy (JSON). */
  readonly policyFile: string;
  /** `MESHREG_TOKEN`: the shared agent token, all-powerful (compatibility). */
  readonly token: string;
  /** `MESHREG_TOKEN_FILE`: the shared agent token, read from a file. */
  readonly tokenFile: string;
  /** `MESHREG_ADMIN_TOKEN`: an admin token with write access, named `admin`. */
  readonly adminToken: string;
  /** `MESHREG_ADMIN_TOKEN_FILE`: the same, read from a file. */
  readonly adminTokenFile: string;
}

/** Turns the secret of an agent's hello into what the agent may do. */
export interface AgentAuthenticator {
  /** The grant of an `agent` token with this secret, or undefined (compared in constant time). */
  authenticate(secret: string): TokenGrant | undefined;
}

/** The grant of the shared `MESHREG_TOKEN`: any node, every service. */
export const SHARED_GRANT: TokenGrant = Object.freeze({
  name: 'shared',
  kind: 'agent',
  node: Object.freeze({ kind: 'any' }),
  services: ALL_SERVICES,
});

const ADMIN_GRANT: TokenGrant = Object.freeze({
  name: 'admin',
  kind: 'admin',
  node: Object.freeze({ kind: 'any' }),
  services: ALL_SERVICES,
});

/** Watched directories and, in each, the file names that matter. */
type Watched = Map<string, { watcher: FSWatcher; names: Set<string> }>;

interface Entry {
  readonly grant: TokenGrant;
  readonly digest: Buffer;
  /** The file the secret was read from (watched for changes), if any. */
  readonly file?: string;
}

/** One shared agent token (no policy): what a session uses when it is given no authenticator. */
export function sharedAgentToken(token: string): AgentAuthenticator {
  const table = token === '' ? [] : [{ grant: SHARED_GRANT, digest: secretDigest(token) }];
  return { authenticate: (secret) => lookup(table, secret) };
}

/** Every token's grant for its secret, checked against every candidate (constant time per candidate). */
function lookup(table: readonly Entry[], secret: string): TokenGrant | undefined {
  if (secret === '') return undefined;
  const digest = secretDigest(secret);
  let found: TokenGrant | undefined;
  for (const e of table) if (digestsEqual(e.digest, digest) && found === undefined) found = e.grant;
  return found;
}

/** Reads a secret file: its content trimmed; an error (with `at` as its path) when unreadable or empty. */
function readSecretFile(file: string, at: string, errors: FieldError[]): string | undefined {
  try {
    const secret = readFileSync(file, 'utf8').trim();
    if (secret !== '') return secret;
    errors.push({ path: at, message: `${file} is empty` });
  } catch (err) {
    errors.push({
      path: at,
      message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    });
  }
  return undefined;
}

function readPolicy(file: string, errors: FieldError[]): TokenPolicyFile | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    errors.push({ path: 'MESHREG_TOKEN_POLICY_FILE', message: `cannot read ${file}: ${code}` });
    return undefined;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    errors.push({
      path: 'MESHREG_TOKEN_POLICY_FILE',
      message: `${file} is not JSON: ${(err as Error).message}`,
    });
    return undefined;
  }
  const decoded = decodeTokenPolicy(raw);
  if (decoded.ok) return decoded.value;
  errors.push(...decoded.errors);
  return undefined;
}

/** Builds the token table from every source; every error found, with its path, when one fails. */
export function loadTokens(sources: TokenSources): Decoded<readonly Entry[]> {
  const errors: FieldError[] = [];
  const table: Entry[] = [];
  const add = (grant: TokenGrant, secret: string | undefined, file = ''): void => {
    if (secret !== undefined)
      table.push({
        grant,
        digest: secretDigest(secret),
        ...(file === '' ? {} : { file: path.resolve(file) }),
      });
  };
  if (sources.policyFile !== '') {
    const policy = readPolicy(sources.policyFile, errors);
    const dir = path.dirname(sources.policyFile);
    for (const [i, t] of (policy?.tokens ?? []).entries()) {
      if ('secret' in t.source) add(t.grant, t.source.secret);
      else {
        const file = path.resolve(dir, t.source.secretFile);
        add(t.grant, readSecretFile(file, `tokens[${i}].secretFile`, errors), file);
      }
    }
  }
  if (sources.tokenFile !== '')
    add(SHARED_GRANT, readSecretFile(sources.tokenFile, 'MESHREG_TOKEN_FILE', errors));
  else if (sources.token !== '') add(SHARED_GRANT, sources.token);
  if (sources.adminTokenFile !== '')
    add(ADMIN_GRANT, readSecretFile(sources.adminTokenFile, 'MESHREG_ADMIN_TOKEN_FILE', errors));
  else if (sources.adminToken !== '') add(ADMIN_GRANT, sources.adminToken);
  checkDistinct(table, errors);
  return errors.length === 0 ? { ok: true, value: table } : { ok: false, errors };
}

/** Two tokens with one secret would make the secret mean whichever matched first: refused, by name. */
function checkDistinct(table: readonly Entry[], errors: FieldError[]): void {
  for (let i = 0; i < table.length; i++)
    for (let j = i + 1; j < table.length; j++) {
      const a = table[i];
      const b = table[j];
      if (a !== undefined && b !== undefined && digestsEqual(a.digest, b.digest))
        errors.push({ path: b.grant.name, message: `has the same secret as the token "${a.grant.name}"` });
    }
}

export interface TokenStoreOptions {
  readonly logger: Logger;
  /** Quiet time after a file change before reloading (editors write a file in several steps). */
  readonly debounceMs: number;
}

/** The tokens in force, reloadable; see the file comment. */
export class TokenStore implements AgentAuthenticator {
  readonly #sources: TokenSources;
  readonly #log: Logger;
  readonly #debounceMs: number;
  readonly #listeners: (() => void)[] = [];
  /** The watched directories and the names in each that matter; undefined until {@link watch}. */
  #watched: Watched | undefined;
  #table: readonly Entry[];
  #timer: NodeJS.Timeout | undefined;

  private constructor(sources: TokenSources, table: readonly Entry[], opts: TokenStoreOptions) {
    this.#sources = sources;
    this.#table = table;
    this.#log = opts.logger.child({ component: 'tokens' });
    this.#debounceMs = opts.debounceMs;
  }

  /** Loads the tokens; the errors (with paths) when a source is unreadable or invalid. */
  static open(sources: TokenSources, opts: TokenStoreOptions): Decoded<TokenStore> {
    const loaded = loadTokens(sources);
    if (!loaded.ok) return loaded;
    const store = new TokenStore(sources, loaded.value, opts);
    store.#log.info('tokens loaded', { tokens: store.names() });
    return { ok: true, value: store };
  }

  /** The names of the tokens in force (for logs; never secrets). */
  names(): string[] {
    return this.#table.map((e) => e.grant.name);
  }

  /** The grant of any token with this secret. */
  lookup(secret: string): TokenGrant | undefined {
    return lookup(this.#table, secret);
  }

  authenticate(secret: string): TokenGrant | undefined {
    const grant = this.lookup(secret);
    return grant?.kind === 'agent' ? grant : undefined;
  }

  /** The admin API's view: `admin` tokens write, `admin-read` tokens read, any other token is unknown. */
  adminAuth(): AdminAuth {
    return {
      enabled: () => this.#table.some((e) => e.grant.kind !== 'agent'),
      authenticate: (secret): AdminCaller | undefined => {
        const grant = this.lookup(secret);
        if (grant === undefined || grant.kind === 'agent') return undefined;
        return { name: grant.name, access: grant.kind === 'admin' ? 'write' : 'read' };
      },
    };
  }

  /** Runs `listener` after every successful reload (e.g. to re-check live connections). */
  onReload(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /** Re-reads every source; true when the new tokens are in force, false when the old ones stay. */
  reload(why: string): boolean {
    const loaded = loadTokens(this.#sources);
    if (!loaded.ok) {
      this.#log.error('token reload failed; the previous tokens stay in force', {
        why,
        errors: loaded.errors,
        reason: describe(loaded.errors),
      });
      return false;
    }
    this.#table = loaded.value;
    this.#log.info('tokens reloaded', { why, tokens: this.names() });
    this.#syncWatches();
    for (const l of this.#listeners) l();
    return true;
  }

  /**
   * Watches the files the tokens come from (the policy, the token files and the policy's secret
   * files), reloading {@link TokenStoreOptions.debounceMs} after the last change.
   */
  watch(): void {
    this.#watched ??= new Map();
    this.#syncWatches();
  }

  /** Watches the directories of the current files and stops watching the others. */
  #syncWatches(): void {
    const watched = this.#watched;
    if (watched === undefined) return;
    const s = this.#sources;
    const files = [s.policyFile, s.tokenFile, s.adminTokenFile]
      .filter((f) => f !== '')
      .map((f) => path.resolve(f))
      .concat(this.#table.flatMap((e) => (e.file === undefined ? [] : [e.file])));
    const wanted = new Map<string, Set<string>>();
    for (const f of files)
      wanted.set(path.dirname(f), (wanted.get(path.dirname(f)) ?? new Set()).add(path.basename(f)));
    for (const [dir, w] of watched)
      if (!wanted.has(dir)) {
        w.watcher.close();
        watched.delete(dir);
      }
    for (const [dir, names] of wanted) {
      const current = watched.get(dir);
      if (current !== undefined) current.names = names;
      else this.#watchDir(watched, dir, names);
    }
  }

  // Directories, not files: an editor or a Kubernetes secret volume replaces a file by renaming
  // another over it, and a watch on the old file would see nothing more.
  #watchDir(watched: Watched, dir: string, names: Set<string>): void {
    try {
      const entry = { watcher: watch(dir, { persistent: false }), names };
      entry.watcher.on('change', (_event, name) => {
        if (typeof name !== 'string' || entry.names.has(name)) this.#schedule();
      });
      entry.watcher.on('error', (err) => {
        this.#log.warn('token file watch failed; SIGHUP still reloads', { dir, err });
      });
      watched.set(dir, entry);
    } catch (err) {
      this.#log.warn('cannot watch token files; SIGHUP still reloads', { dir, err });
    }
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.reload('file changed');
    }, this.#debounceMs);
    this.#timer.unref();
  }

  /** Stops watching. */
  close(): void {
    clearTimeout(this.#timer);
    for (const w of this.#watched?.values() ?? []) w.watcher.close();
    this.#watched = undefined;
  }
}
