/**
 * The token policy: which secrets exist, what each one is called, and what it may do. A small
 * subset of Consul's ACL model: a token is an `agent` token (bound to a node name or a node-name
 * prefix, with service-name prefixes it may `write`, `read` or is `deny`ed, the most specific prefix
 * winning, like Consul's `service_prefix` rules), an `admin` token (the admin API, read and write) or
 * an `admin-read` token (the admin API's GET routes only).
 *
 * The file is JSON: `{"tokens": [{name, kind, secret | secretFile, node | nodePrefix, services}]}`.
 * {@link decodeTokenPolicy} checks it and reports every error with its path; secrets held in files
 * are read by the token store, not here.
 */
import {
  Issues,
  at,
  isRecord,
  readArray,
  readOneOf,
  readString,
  type Decoded,
} from '../../proto/validate.js';

export type TokenKind = 'agent' | 'admin' | 'admin-read';
export const TOKEN_KINDS: readonly TokenKind[] = ['agent', 'admin', 'admin-read'];

/** What a token may do with one service name; `write` includes `read`. */
export type ServiceAccess = 'deny' | 'read' | 'write';

/** Which node names a token may connect as: any, exactly one, or those starting with a prefix. */
export type NodeRule =
  | { readonly kind: 'any' }
  | { readonly kind: 'exact'; readonly name: string }
  | { readonly kind: 'prefix'; readonly prefix: string };

/** Service-name prefixes per access level; `''` is the prefix of every name. */
export interface ServiceRules {
  readonly write: readonly string[];
  readonly read: readonly string[];
  readonly deny: readonly string[];
}

/** What a token is allowed; never holds the secret. */
export interface TokenGrant {
  /** Shown in logs, audit records and refusals instead of the secret. */
  readonly name: string;
  readonly kind: TokenKind;
  readonly node: NodeRule;
  readonly services: ServiceRules;
}

/** Where a token's secret is: in the policy file itself, or in a file of its own (trimmed). */
export type SecretSource = { readonly secret: string } | { readonly secretFile: string };

/** One entry of a decoded policy file. */
export interface PolicyToken {
  readonly grant: TokenGrant;
  readonly source: SecretSource;
}

/** A decoded policy file. */
export interface TokenPolicyFile {
  readonly tokens: readonly PolicyToken[];
}

/** Everything: the shared `MESHREG_TOKEN` keeps this grant (any node, every service). */
export const ALL_SERVICES: ServiceRules = Object.freeze({
  write: Object.freeze(['']),
  read: Object.freeze([]),
  deny: Object.freeze([]),
});

/** Read everything, write nothing: an agent token's services when its policy entry names none. */
export const READ_ONLY_SERVICES: ServiceRules = Object.freeze({
  write: Object.freeze([]),
  read: Object.freeze(['']),
  deny: Object.freeze([]),
});

/** Secrets shorter than this are refused: a policy file is no place for a guessable password. */
export const MIN_SECRET_LENGTH = 16;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_TOKENS = 10_000;
const MAX_PREFIXES = 256;
const FIELDS = new Set(['name', 'kind', 'secret', 'secretFile', 'node', 'nodePrefix', 'services']);
const SERVICE_LEVELS = ['write', 'read', 'deny'] as const;

/** Checks a parsed policy file; every problem comes back with its path (`tokens[2].secret: ...`). */
export function decodeTokenPolicy(raw: unknown): Decoded<TokenPolicyFile> {
  const issues = new Issues();
  if (!isRecord(raw)) return issues.result<TokenPolicyFile>(issues.add('', 'must be an object'));
  for (const key of Object.keys(raw))
    if (key !== 'tokens') issues.add(key, 'unknown field (the policy has only "tokens")');
  const tokens =
    readArray(issues, raw['tokens'], 'tokens', (t, p) => readToken(issues, t, p), {
      required: true,
      maxItems: MAX_TOKENS,
    }) ?? [];
  if (Array.isArray(raw['tokens']) && tokens.length === raw['tokens'].length) checkUnique(issues, tokens);
  return issues.result(issues.empty ? { tokens } : undefined);
}

function readToken(issues: Issues, raw: unknown, path: string): PolicyToken | undefined {
  if (!isRecord(raw)) return issues.add(path, 'must be an object');
  const before = issues.list.length;
  for (const key of Object.keys(raw)) if (!FIELDS.has(key)) issues.add(at(path, key), 'unknown field');
  const name = readString(issues, raw['name'], at(path, 'name'), {
    required: true,
    maxLength: 64,
    pattern: NAME,
    patternHint: 'must be 1..64 letters, digits, ".", "_" or "-", starting with a letter or digit',
  });
  const kind = readOneOf(issues, raw['kind'], at(path, 'kind'), TOKEN_KINDS, true);
  const source = readSource(issues, raw, path);
  const node = readNodeRule(issues, raw, path, kind);
  const services = readServices(issues, raw['services'], at(path, 'services'), kind);
  if (issues.list.length > before || name === undefined || kind === undefined || source === undefined)
    return undefined;
  return { grant: { name, kind, node, services }, source };
}

function readSource(issues: Issues, raw: Record<string, unknown>, path: string): SecretSource | undefined {
  const inline = raw['secret'] !== undefined;
  const file = raw['secretFile'] !== undefined;
  if (inline === file)
    return issues.add(path, inline ? 'set secret or secretFile, not both' : 'needs secret or secretFile');
  if (file) {
    const secretFile = readString(issues, raw['secretFile'], at(path, 'secretFile'), { required: true });
    return secretFile === undefined ? undefined : { secretFile };
  }
  const secret = readString(issues, raw['secret'], at(path, 'secret'), {
    required: true,
    minLength: MIN_SECRET_LENGTH,
    maxLength: 4096,
  });
  if (secret !== undefined && secret.trim() !== secret)
    return issues.add(at(path, 'secret'), 'must not start or end with white space');
  return secret === undefined ? undefined : { secret };
}

function readNodeRule(
  issues: Issues,
  raw: Record<string, unknown>,
  path: string,
  kind: TokenKind | undefined,
): NodeRule {
  const exact = readString(issues, raw['node'], at(path, 'node'), { maxLength: 256 });
  const prefix = readString(issues, raw['nodePrefix'], at(path, 'nodePrefix'), { maxLength: 256 });
  if (exact !== undefined && prefix !== undefined)
    issues.add(at(path, 'nodePrefix'), 'set node or nodePrefix, not both');
  if ((exact !== undefined || prefix !== undefined) && kind !== undefined && kind !== 'agent')
    issues.add(
      at(path, exact !== undefined ? 'node' : 'nodePrefix'),
      'only agent tokens are bound to a node',
    );
  if (exact !== undefined) {
    if (exact === '') issues.add(at(path, 'node'), 'must not be empty');
    return { kind: 'exact', name: exact };
  }
  return prefix === undefined || prefix === '' ? { kind: 'any' } : { kind: 'prefix', prefix };
}

function readServices(issues: Issues, raw: unknown, path: string, kind: TokenKind | undefined): ServiceRules {
  if (raw === undefined) return READ_ONLY_SERVICES;
  if (!isRecord(raw)) return issues.add(path, 'must be an object') ?? READ_ONLY_SERVICES;
  if (kind !== undefined && kind !== 'agent') issues.add(path, 'only agent tokens have service rules');
  for (const key of Object.keys(raw))
    if (!(SERVICE_LEVELS as readonly string[]).includes(key))
      issues.add(at(path, key), 'unknown field (write, read or deny)');
  const lists: Record<(typeof SERVICE_LEVELS)[number], string[]> = { write: [], read: [], deny: [] };
  const seen = new Map<string, string>();
  for (const level of SERVICE_LEVELS) {
    const p = at(path, level);
    const list = readArray(issues, raw[level], p, (s, sp) => readString(issues, s, sp, { maxLength: 256 }), {
      maxItems: MAX_PREFIXES,
    });
    for (const [i, prefix] of (list ?? []).entries()) {
      const other = seen.get(prefix);
      // One prefix at two levels would make "most specific wins" ambiguous.
      if (other !== undefined) issues.add(at(p, i), `"${prefix}" is already listed in ${other}`);
      seen.set(prefix, p);
    }
    // An absent read list means "read everything"; an absent write or deny list means none.
    lists[level] = list ?? (level === 'read' ? [''] : []);
  }
  return { write: lists.write, read: lists.read, deny: lists.deny };
}

function checkUnique(issues: Issues, tokens: readonly PolicyToken[]): void {
  const names = new Map<string, number>();
  const secrets = new Map<string, number>();
  for (const [i, t] of tokens.entries()) {
    const n = names.get(t.grant.name);
    if (n !== undefined) issues.add(at(at('tokens', i), 'name'), `repeats tokens[${n}].name`);
    names.set(t.grant.name, i);
    if (!('secret' in t.source)) continue;
    const s = secrets.get(t.source.secret);
    // The error names the other entry, never the secret.
    if (s !== undefined) issues.add(at(at('tokens', i), 'secret'), `is the same as tokens[${s}].secret`);
    secrets.set(t.source.secret, i);
  }
}

/** Whether `grant` may connect as the node called `nodeName`. */
export function nodeAllowed(grant: TokenGrant, nodeName: string): boolean {
  const rule = grant.node;
  switch (rule.kind) {
    case 'any':
      return true;
    case 'exact':
      return nodeName === rule.name;
    case 'prefix':
      return nodeName.startsWith(rule.prefix);
    default: {
      const never: never = rule;
      throw new Error(`unknown node rule ${String(never)}`);
    }
  }
}

/**
 * What `rules` allow on the service `service`: the longest listed prefix of the name decides (the
 * most specific rule wins, as in Consul); no matching prefix is `deny`.
 */
export function serviceAccess(rules: ServiceRules, service: string): ServiceAccess {
  let best: ServiceAccess = 'deny';
  let bestLength = -1;
  for (const level of SERVICE_LEVELS)
    for (const prefix of rules[level])
      if (prefix.length > bestLength && service.startsWith(prefix)) {
        best = level;
        bestLength = prefix.length;
      }
  return best;
}

/** Whether `grant` may publish instances of `service`. */
export function mayWrite(grant: TokenGrant, service: string): boolean {
  return grant.kind === 'agent' && serviceAccess(grant.services, service) === 'write';
}

/** Whether `grant` may watch `service` (write includes read). */
export function mayRead(grant: TokenGrant, service: string): boolean {
  return grant.kind === 'agent' && serviceAccess(grant.services, service) !== 'deny';
}
