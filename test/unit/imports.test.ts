/**
 * The shape of the code: imports go one way (proto ← agent, proto ← control-plane, bin composes), and
 * no module imports itself back through others. Reads the .ts sources, not the compiled output.
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const AREAS = ['proto', 'agent', 'control-plane', 'bin'] as const;
type Area = (typeof AREAS)[number];

/** Which areas each area may import from (its own area is always allowed). */
const ALLOWED: Readonly<Record<Area, readonly Area[]>> = {
  proto: [],
  agent: ['proto'],
  'control-plane': ['proto'],
  bin: ['proto', 'agent', 'control-plane'],
};

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(rel)));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Every module specifier in `text`: static imports and re-exports (type-only too), side-effect and dynamic imports. */
function specifiers(text: string): string[] {
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  const out: string[] = [];
  for (const re of patterns) for (const m of text.matchAll(re)) if (m[1] !== undefined) out.push(m[1]);
  return out;
}

/** The project file a relative specifier names (`./x.js` → `dir/x.ts`); undefined for packages. */
function resolve(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  return path.posix.normalize(path.posix.join(path.posix.dirname(from), spec)).replace(/\.js$/, '.ts');
}

function areaOf(file: string): Area | undefined {
  return AREAS.find((a) => file === a || file.startsWith(`${a}/`));
}

/** A cycle as a list of modules (first repeated at the end), or undefined when the graph has none. */
function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const s = state.get(next);
      if (s === 'open') return [...stack.slice(stack.indexOf(next)), next];
      if (s === undefined) {
        const found = visit(next);
        if (found !== undefined) return found;
      }
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of [...graph.keys()].sort()) {
    if (state.get(node) !== undefined) continue;
    const found = visit(node);
    if (found !== undefined) return found;
  }
  return undefined;
}

async function projectGraph(): Promise<Map<string, string[]>> {
  const files = (await Promise.all(AREAS.map((a) => sources(a)))).flat();
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = await readFile(path.join(ROOT, file), 'utf8');
    const targets: string[] = [];
    for (const spec of specifiers(text)) {
      const target = resolve(file, spec);
      if (target !== undefined) targets.push(target);
    }
    graph.set(file, targets);
  }
  return graph;
}

function directionViolations(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const out: string[] = [];
  for (const [file, targets] of graph) {
    const from = areaOf(file);
    for (const target of targets) {
      const to = areaOf(target);
      if (from === undefined || to === undefined) {
        out.push(`${file} -> ${target}: outside the project's source areas`);
        continue;
      }
      if (to !== from && !ALLOWED[from].includes(to)) out.push(`${file} -> ${target}`);
    }
  }
  return out;
}

test('imports - the specifier reader finds every import form', () => {
  const text = [
    "import { a,\n  b } from './a.js';",
    "import type { C } from '../c.js';",
    "export { d } from './d.js';",
    "export * from './e.js';",
    "import './side.js';",
    "const f = await import('./f.js');",
    "import ws from 'ws';",
  ].join('\n');
  assert.deepEqual(specifiers(text).sort(), [
    '../c.js',
    './a.js',
    './d.js',
    './e.js',
    './f.js',
    './side.js',
    'ws',
  ]);
});

test('imports - the checks catch a wrong direction and a cycle when there is one', () => {
  const bad = new Map([
    ['proto/x.ts', ['agent/y.ts']],
    ['agent/y.ts', ['control-plane/z.ts']],
    ['control-plane/z.ts', ['proto/x.ts']],
  ]);
  assert.deepEqual(directionViolations(bad), [
    'proto/x.ts -> agent/y.ts',
    'agent/y.ts -> control-plane/z.ts',
  ]);
  assert.deepEqual(findCycle(bad), ['agent/y.ts', 'control-plane/z.ts', 'proto/x.ts', 'agent/y.ts']);
  assert.equal(
    findCycle(
      new Map([
        ['a', ['b']],
        ['b', []],
        ['c', ['a', 'b']],
      ]),
    ),
    undefined,
  );
});

test('imports - every relative import names an existing source file', async () => {
  const graph = await projectGraph();
  assert.ok(graph.size > 20, `found ${graph.size} modules`);
  const missing: string[] = [];
  for (const [file, targets] of graph)
    for (const t of targets) if (!graph.has(t)) missing.push(`${file} -> ${t}`);
  assert.deepEqual(missing, []);
});

test('imports - proto imports nothing of ours; agent and control-plane only proto; bin composes', async () => {
  const graph = await projectGraph();
  assert.deepEqual(directionViolations(graph), []);
  // bin is the top: nothing outside it imports it.
  const intoBin = [...graph].filter(([f, ts]) => areaOf(f) !== 'bin' && ts.some((t) => areaOf(t) === 'bin'));
  assert.deepEqual(intoBin, []);
});

test('imports - the wire (proto/*.ts) never imports the shared runtime (proto/runtime/)', async () => {
  const graph = await projectGraph();
  const wire = (f: string): boolean => f.startsWith('proto/') && !f.slice('proto/'.length).includes('/');
  const bad = [...graph].flatMap(([f, ts]) =>
    wire(f) ? ts.filter((t) => t.startsWith('proto/runtime/')).map((t) => `${f} -> ${t}`) : [],
  );
  assert.deepEqual(bad, []);
  assert.ok(
    [...graph.keys()].some((f) => f.startsWith('proto/runtime/')),
    'the runtime folder exists',
  );
});

/** The role folders of the control plane: each is a process of its own and shares only what lies below. */
const ROLES = ['control-plane/session/', 'control-plane/data/', 'control-plane/meta/'] as const;

function roleViolations(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const roleOf = (f: string): string | undefined => ROLES.find((r) => f.startsWith(r));
  return [...graph].flatMap(([f, ts]) => {
    const from = roleOf(f);
    if (from === undefined) return [];
    return ts.filter((t) => roleOf(t) !== undefined && roleOf(t) !== from).map((t) => `${f} -> ${t}`);
  });
}

test('imports - the role check catches a session module importing a data one', () => {
  const bad = new Map([
    ['control-plane/session/a.ts', ['control-plane/data/b.ts', 'control-plane/link/c.ts']],
    ['control-plane/data/b.ts', ['control-plane/link/c.ts']],
  ]);
  assert.deepEqual(roleViolations(bad), ['control-plane/session/a.ts -> control-plane/data/b.ts']);
});

test('imports - no import between control-plane/session, data and meta', async () => {
  assert.deepEqual(roleViolations(await projectGraph()), []);
});

test('imports - there is no circular import among the modules', async () => {
  assert.equal(findCycle(await projectGraph()), undefined);
});

/** Where RpcPeers come from: a file that imports one of these works with peers. */
const PEER_SOURCES = [
  'control-plane/link/rpc-peer.ts',
  'control-plane/link/link-client.ts',
  'control-plane/link/role-server.ts',
];

/**
 * Calls of a peer's methods with a string literal as the method or event: `.handle('x'`,
 * `.call("x"`, `callPaged(\`x\``, `.emit('x'`, and `peer.on('x'` (only on a peer: a socket's or an
 * emitter's `.on('message')` is no link event).
 */
function stringNames(text: string): string[] {
  const patterns = [
    /\.(?:handle|handlePaged|call|callPaged|emit)\(\s*['"`][^'"`]*['"`]/g,
    /\bpeer(?:\(\))?\??\.on\(\s*['"`][^'"`]*['"`]/g,
  ];
  return patterns.flatMap((re) => [...text.matchAll(re)].map((m) => m[0]));
}

test('imports - the string-name scan catches a method or event named by a literal, and only those', () => {
  const text = [
    "peer.handle('publish', (p) => p);",
    'this.#client.peer?.call("heartbeat", { id });',
    's.peer.callPaged(`collect`, params);',
    "peer.emit('changes', { changes });",
    "peer.on('repl', (op) => op);",
    "this.#peer().on('catalog', f);",
    "ws.on('message', (data) => data);",
    "this.#http.on('clientError', handler);",
    'peer.handle(DATA_LINK.publish, (p) => p);',
    'peer.on(META_LINK.table, (t) => t);',
  ].join('\n');
  assert.deepEqual(stringNames(text), [
    ".handle('publish'",
    '.call("heartbeat"',
    '.callPaged(`collect`',
    ".emit('changes'",
    "peer.on('repl'",
    "peer().on('catalog'",
  ]);
});

test('imports - no method or event of a server link is named by a string outside proto/', async () => {
  const graph = await projectGraph();
  const bad: string[] = [];
  let scanned = 0;
  for (const [file, targets] of graph) {
    if (areaOf(file) === 'proto') continue;
    if (!PEER_SOURCES.includes(file) && !targets.some((t) => PEER_SOURCES.includes(t))) continue;
    scanned++;
    for (const hit of stringNames(await readFile(path.join(ROOT, file), 'utf8'))) bad.push(`${file}: ${hit}`);
  }
  assert.ok(scanned >= 6, `scanned ${scanned} files that use peers`);
  assert.deepEqual(bad, []);
});
