/**
 * No default secret anywhere: the sources, examples, deployment files and the README hold no literal
 * token. A secret is what an assignment to a token-like name, a `MESHREG_*TOKEN=` setting, a bearer
 * header or a long random-looking string gives; placeholders (`<token>`, `$(cat file)`, `$VAR`) pass.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const DIRS = ['agent', 'control-plane', 'proto', 'bin', 'examples', 'deploy'];
const TEXT_FILE =
  /\.(ts|js|mjs|cjs|py|java|sh|md|json|ya?ml|toml|env|properties|txt)$|Dockerfile|Containerfile/;
const SKIP_DIR = new Set(['node_modules', 'dist', 'target', 'build', '.venv', '__pycache__']);

async function files(dir: string): Promise<string[]> {
  if (!existsSync(path.join(ROOT, dir))) return [];
  const out: string[] = [];
  for (const entry of await readdir(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory() && !SKIP_DIR.has(entry.name)) out.push(...(await files(rel)));
    else if (entry.isFile() && TEXT_FILE.test(entry.name)) out.push(rel);
  }
  return out;
}

/** A value that stands for a secret rather than being one. */
function placeholder(value: string): boolean {
  const v = value.replace(/^["'`]/, '');
  // A variable's name is a reference to a secret, not one.
  if (/^MESHREG_[A-Z_]+$/.test(v)) return true;
  return v === '' || v.startsWith('<') || v.startsWith('$') || v.startsWith('...') || v.startsWith('{');
}

/** Shannon entropy in bits per character. */
function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) bits -= (n / s.length) * Math.log2(n / s.length);
  return bits;
}

const RULES: readonly { why: string; re: RegExp; group: number }[] = [
  // MESHREG_TOKEN=..., MESHREG_ADMIN_TOKEN=... (not MESHREG_TOKEN_FILE=, which names a file).
  { why: 'a token setting with a literal value', re: /\bMESHREG_(?:[A-Z]+_)*TOKEN=(\S*)/g, group: 1 },
  { why: 'a bearer token', re: /\bBearer\s+([A-Za-z0-9._~+/=-]{8,})/g, group: 1 },
  { why: 'a Consul token header', re: /X-Consul-Token:\s*([^\s"'`]+)/gi, group: 1 },
  // token: 'x', adminToken = "x", "secret": "x", password: `x` (a secret has no white space; a
  // space before the colon is a ternary, not a key).
  {
    why: 'a literal assigned to a token-like name',
    re: /["']?\b(?:\w*[Tt]oken|TOKEN|secret|password)["']?(?::|[ \t]*=)[ \t]*(["'`])([^"'`\s]*)\1/g,
    group: 2,
  },
];

/** Every literal secret in `text`, as `file:line: why`. */
function findSecrets(file: string, text: string): string[] {
  const found: string[] = [];
  const line = (index: number): number => text.slice(0, index).split('\n').length;
  for (const rule of RULES)
    for (const m of text.matchAll(rule.re)) {
      const value = m[rule.group] ?? '';
      if (!placeholder(value)) found.push(`${file}:${line(m.index)}: ${rule.why}`);
    }
  for (const m of text.matchAll(/["'`]([A-Za-z0-9+/=_-]{24,})["'`]/g)) {
    const s = m[1] ?? '';
    if (/\d/.test(s) && /[A-Za-z]/.test(s) && entropy(s) >= 4.2)
      found.push(`${file}:${line(m.index)}: a long random-looking string`);
  }
  return found;
}

test('secrets - the scanner finds literal secrets and lets placeholders pass', () => {
  const key = ['tok', 'en'].join('');
  const bad = [
    `MESHREG_${key.toUpperCase()}=hunter2-example`,
    `const x = { ${key}: 'hunter2-example' };`,
    `"secret": "hunter2-example"`,
    `curl -H "Authorization: Bearer hunter2-example"`,
    `k = '${['Zq8vN2', 'pLx7Rt4', 'mWc9Yb3', 'KsD6hFj1'].join('')}'`,
  ];
  for (const b of bad) assert.equal(findSecrets('sample', b).length, 1, b);
  const good = [
    `MESHREG_${key.toUpperCase()}_FILE=agent-token`,
    `MESHREG_ADMIN_${key.toUpperCase()}="$(cat admin-token)"`,
    `MESHREG_${key.toUpperCase()}=<token>`,
    `"secret": "<a secret of 16 characters or more>"`,
    `Authorization: Bearer <token>`,
    `const ${key} = '';`,
  ];
  for (const g of good) assert.deepEqual(findSecrets('sample', g), [], g);
});

test('secrets - no literal secret in the sources, examples, deployment files or README', async () => {
  const all = [...(await Promise.all(DIRS.map(files))).flat(), 'README.md'];
  assert.ok(all.length > 50, `found the files (${all.length})`);
  const found: string[] = [];
  for (const f of all) found.push(...findSecrets(f, await readFile(path.join(ROOT, f), 'utf8')));
  assert.deepEqual(found, []);
});
