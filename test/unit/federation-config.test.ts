/**
 * Federation configuration: the variables and the file as meta reads them at start (every fault
 * names its variable), the parsers and the admin decoders under random input, meta's board edits
 * (with and without a federation file, written back atomically, refused when they cannot be kept),
 * and the per-peer summary of the sessions' links.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { ageText } from '../../bin/ctl-federation.js';
import type { FederationSettings } from '../../control-plane/config.js';
import {
  federationStore,
  loadFederation,
  writeFederationFile,
  type PeerOrigin,
} from '../../control-plane/federation/federation-config.js';
import { FederationBoard } from '../../control-plane/meta/federation-board.js';
import { peerView } from '../../control-plane/meta/federation-ops.js';
import { DATACENTER_PATTERN } from '../../proto/datacenter.js';
import { MeshregError } from '../../proto/errors.js';
import {
  decodeExportEdit,
  parseExportsSpec,
  parsePeersSpec,
  type FederationConfig,
  type PeerLinkStatus,
  type SessionFederationStatus,
} from '../../proto/federation.js';
import { decodeAdminFederation, decodePeerPut } from '../../proto/federation-admin.js';
import { SERVICE_NAME_PATTERN } from '../../proto/instance.js';
import { anyJson, anyText, mutated, serviceName } from '../support/arbitraries.js';

const RUNS = { numRuns: 400 };

async function tmp(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshreg-fed-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function settings(s: Partial<FederationSettings>): FederationSettings {
  return { peers: '', exports: '', tokenFile: '', file: '', digestMs: 6000, ...s };
}

/** The Error `fn` throws (fails the test when it throws nothing). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof Error);
    return err;
  }
  assert.fail('expected an error');
}

async function rejected(p: Promise<unknown>): Promise<MeshregError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof MeshregError, String(err));
    return err;
  }
  assert.fail('expected a rejection');
}

test('federation config - the variables: peers, shared token file and exports', async (t) => {
  const dir = await tmp(t);
  const token = path.join(dir, 'token');
  await writeFile(token, '  s3cret\n');
  const { config, store } = loadFederation(
    settings({
      peers: 'dc3=wss://c.example:9630;dc2=ws://10.0.0.2:9630,ws://10.0.0.3:9630',
      exports: 'dc2=web,api dc2=web',
      tokenFile: token,
    }),
    'dc1',
  );
  assert.equal(config.datacenter, 'dc1');
  assert.deepEqual(
    config.peers.map((p) => [p.name, p.addresses, p.token, p.exports]),
    [
      ['dc2', ['ws://10.0.0.2:9630', 'ws://10.0.0.3:9630'], 's3cret', ['api', 'web']],
      ['dc3', ['wss://c.example:9630'], 's3cret', []],
    ],
  );
  assert.deepEqual(store.origins.get('dc2'), { source: 'env', tokenFile: '', pinned: ['api', 'web'] });
  assert.equal(store.file, '');
});

test('federation config - every fault names its variable or file', async (t) => {
  const dir = await tmp(t);
  const token = path.join(dir, 'token');
  await writeFile(token, 'x');
  const load = (s: Partial<FederationSettings>): Error => thrown(() => loadFederation(settings(s), 'dc1'));
  assert.match(load({ peers: 'dc2', tokenFile: token }).message, /^MESHREG_FEDERATION_PEERS: .*NAME=URL/);
  assert.match(
    load({ peers: 'dc2=http://x', tokenFile: token }).message,
    /MESHREG_FEDERATION_PEERS: .*ws:\/\//,
  );
  assert.match(load({ peers: 'dc2=ws://a;dc2=ws://b', tokenFile: token }).message, /listed twice/);
  assert.match(load({ peers: 'dc2=ws://a' }).message, /needs MESHREG_FEDERATION_TOKEN_FILE/);
  assert.match(
    load({ peers: 'dc2=ws://a', tokenFile: path.join(dir, 'none') }).message,
    /^MESHREG_FEDERATION_TOKEN_FILE: cannot read/,
  );
  assert.match(
    load({ peers: 'dc2=ws://a', tokenFile: token, exports: 'dc9=web' }).message,
    /MESHREG_FEDERATION_EXPORTS names dc9, which is not a configured peer/,
  );
  assert.match(
    load({ peers: 'dc2=ws://a', tokenFile: token, exports: 'dc2=bad/name' }).message,
    /^MESHREG_FEDERATION_EXPORTS: .*service name/,
  );
  assert.match(load({ peers: 'dc1=ws://a', tokenFile: token }).message, /this data center itself/);
  const empty = path.join(dir, 'empty');
  await writeFile(empty, '\n');
  assert.match(load({ peers: 'dc2=ws://a', tokenFile: empty }).message, /must hold a token/);
});

test('federation config - the file: tokenFile per peer, never an inline token', async (t) => {
  const dir = await tmp(t);
  const token = path.join(dir, 'dc2.token');
  await writeFile(token, 'pair-2');
  const file = path.join(dir, 'federation.json');
  const write = (v: unknown): Promise<void> => writeFile(file, JSON.stringify(v));
  await write({ peers: [{ name: 'dc2', addresses: ['ws://b:9630'], tokenFile: token, exports: ['web'] }] });
  const { config, store } = loadFederation(settings({ file, exports: 'dc2=api' }), 'dc1');
  assert.deepEqual(config.peers[0], {
    name: 'dc2',
    addresses: ['ws://b:9630'],
    token: 'pair-2',
    exports: ['api', 'web'],
  });
  assert.deepEqual(store.origins.get('dc2'), { source: 'file', tokenFile: token, pinned: ['api'] });
  assert.equal(store.file, file);

  await write({ peers: [{ name: 'dc2', addresses: ['ws://b'], token: 'inline', exports: [] }] });
  assert.match(
    thrown(() => loadFederation(settings({ file }), 'dc1')).message,
    /^MESHREG_FEDERATION_FILE .*peers\[0\]\.token: tokens are read from files/,
  );
  await write({ peers: [{ name: 'dc2', addresses: ['ws://b'] }] });
  assert.match(thrown(() => loadFederation(settings({ file }), 'dc1')).message, /dc2 needs tokenFile/);
  await writeFile(file, '{not json');
  assert.match(
    thrown(() => loadFederation(settings({ file }), 'dc1')).message,
    /^MESHREG_FEDERATION_FILE: cannot read/,
  );
  await write({ peers: [{ name: 'dc2', addresses: ['ws://b'], tokenFile: token }] });
  assert.match(
    thrown(() => loadFederation(settings({ file, peers: 'dc2=ws://c', tokenFile: token }), 'dc1')).message,
    /both in MESHREG_FEDERATION_PEERS and the file/,
  );
});

const nameLike = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,8}$/),
  anyText,
  fc.constantFrom('', '-x', 'a b', 'dc=2', 'x'.repeat(70), 'dc\u00e9'),
);
const addressLike = fc.oneof(
  fc.constantFrom('ws://a:1', 'wss://b.example/x', 'http://c', 'ws://', 'ws://a b'),
  anyText,
);
const specText = fc.oneof(
  anyText,
  fc
    .array(
      fc
        .tuple(nameLike, fc.array(fc.oneof(addressLike, serviceName), { maxLength: 3 }))
        .map(([n, xs]) => `${n}=${xs.join(',')}`),
      { maxLength: 4 },
    )
    .chain((parts) => fc.constantFrom(';', ' ', '\n', ';;').map((sep) => parts.join(sep))),
);

test('federation config - property: the spec parsers only throw an Error naming the fault, never accept a bad name', () => {
  fc.assert(
    fc.property(specText, (text) => {
      try {
        const peers = parsePeersSpec(text);
        for (const p of peers) {
          assert.match(p.name, DATACENTER_PATTERN);
          assert.ok(p.name.length <= 64);
          assert.ok(p.addresses.length > 0);
          for (const a of p.addresses) assert.match(a, /^wss?:\/\/\S+$/);
        }
        assert.equal(new Set(peers.map((p) => p.name)).size, peers.length);
      } catch (err) {
        assert.ok(err instanceof Error && err.message.length > 0 && err.message.length < 500, String(err));
      }
      try {
        for (const [name, services] of parseExportsSpec(text)) {
          assert.match(name, DATACENTER_PATTERN);
          for (const s of services) assert.match(s, SERVICE_NAME_PATTERN);
        }
      } catch (err) {
        assert.ok(err instanceof Error && err.message.length > 0 && err.message.length < 500, String(err));
      }
    }),
    RUNS,
  );
});

test('federation config - property: the admin bodies decode or name their faults; never a bad name', () => {
  const edit = fc.record({
    peer: nameLike,
    add: fc.array(fc.oneof(serviceName, anyText), { maxLength: 3 }),
    remove: fc.array(fc.oneof(serviceName, anyText), { maxLength: 3 }),
  });
  const put = fc.record({
    addresses: fc.array(addressLike, { maxLength: 3 }),
    tokenFile: fc.oneof(fc.constantFrom('/run/secrets/dc2', 'relative', ''), anyText),
    exports: fc.array(fc.oneof(serviceName, anyText), { maxLength: 3 }),
  });
  fc.assert(
    fc.property(fc.oneof(edit, mutated(edit), anyJson), fc.oneof(put, mutated(put), anyJson), (e, p) => {
      const d = decodeExportEdit(e);
      if (d.ok) {
        assert.match(d.value.peer, DATACENTER_PATTERN);
        for (const s of [...d.value.add, ...d.value.remove]) assert.match(s, SERVICE_NAME_PATTERN);
        assert.ok(d.value.add.length + d.value.remove.length > 0);
      } else assert.ok(d.errors.length > 0 && d.errors.every((x) => x.path !== '' || x.message !== ''));
      const q = decodePeerPut(p);
      if (q.ok) {
        assert.ok(q.value.tokenFile.startsWith('/'));
        assert.ok(q.value.addresses.length > 0);
        for (const s of q.value.exports ?? []) assert.match(s, SERVICE_NAME_PATTERN);
      } else assert.ok(q.errors.length > 0);
    }),
    RUNS,
  );
});

test('federation config - the peer body refuses an inline token and a relative token file, by name', () => {
  const a = decodePeerPut({ addresses: ['ws://a:1'], tokenFile: '/t', token: 'secret' });
  assert.deepEqual(!a.ok && a.errors.map((e) => e.path), ['token']);
  const b = decodePeerPut({ addresses: [], tokenFile: 'rel/t' });
  assert.deepEqual(!b.ok && b.errors.map((e) => e.path), ['addresses', 'tokenFile']);
  assert.deepEqual(decodePeerPut({ addresses: ['ws://a:1'], tokenFile: '/t' }), {
    ok: true,
    value: { addresses: ['ws://a:1'], tokenFile: '/t' },
  });
});

// ---- the board -----------------------------------------------------------------------------------

const START: FederationConfig = {
  version: 10,
  datacenter: 'dc1',
  peers: [
    { name: 'dc2', addresses: ['ws://b:1'], token: 'two', exports: ['web'] },
    { name: 'dc3', addresses: ['ws://c:1'], token: 'three', exports: [] },
  ],
};

test('federation board - in memory: export edits, peers put and removed, versions grow, listener told', async (t) => {
  const dir = await tmp(t);
  const token = path.join(dir, 'dc4');
  await writeFile(token, 'four\n');
  const seen: FederationConfig[] = [];
  const board = new FederationBoard(START, (c) => seen.push(c));
  assert.equal(board.persistence, 'memory');
  const a = await board.editExports({ peer: 'dc2', add: ['api'], remove: ['web'] });
  assert.deepEqual(a.peer, { name: 'dc2', addresses: ['ws://b:1'], exports: ['api'], source: 'env' });
  const [b, c] = await Promise.all([
    board.editExports({ peer: 'dc3', add: ['x'], remove: [] }),
    board.editExports({ peer: 'dc3', add: ['y'], remove: [] }),
  ]);
  assert.deepEqual(c.peer.exports, ['x', 'y'], 'concurrent edits both land, one after the other');
  const d = await board.putPeer('dc4', { addresses: ['wss://d:1'], tokenFile: token });
  assert.equal(d.created, true);
  assert.equal(board.state.peers.find((p) => p.name === 'dc4')?.token, 'four');
  const e = await board.removePeer('dc3');
  assert.deepEqual(
    e.peers.map((p) => p.name),
    ['dc2', 'dc4'],
  );
  const versions = [
    START.version,
    a.state.version,
    b.state.version,
    c.state.version,
    d.state.version,
    e.version,
  ];
  assert.ok(
    versions.every((v, i) => i === 0 || v > (versions[i - 1] ?? 0)),
    String(versions),
  );
  assert.equal(seen.length, 5);
  assert.ok(
    board.publicPeers().every((p) => !('token' in p)),
    'no token in what the API shows',
  );

  assert.equal(
    (await rejected(board.editExports({ peer: 'dc9', add: ['a'], remove: [] }))).code,
    'not_found',
  );
  assert.equal((await rejected(board.removePeer('dc9'))).code, 'not_found');
  const self = await rejected(board.putPeer('dc1', { addresses: ['ws://a'], tokenFile: token }));
  assert.deepEqual([self.code, self.fields[0]?.path], ['invalid_argument', 'name']);
  const noToken = await rejected(
    board.putPeer('dc5', { addresses: ['ws://a'], tokenFile: path.join(dir, 'x') }),
  );
  assert.deepEqual([noToken.code, noToken.fields[0]?.path], ['invalid_argument', 'tokenFile']);
  assert.equal(seen.length, 5, 'a refused edit changes nothing');
});

async function fileBoard(
  t: TestContext,
  origins: Record<string, PeerOrigin>,
): Promise<{ board: FederationBoard; file: string; dir: string; seen: FederationConfig[] }> {
  const dir = await tmp(t);
  const file = path.join(dir, 'federation.json');
  await writeFile(file, '{"peers":[]}', { mode: 0o640 });
  await chmod(file, 0o640);
  const seen: FederationConfig[] = [];
  const board = new FederationBoard(
    START,
    (c) => seen.push(c),
    federationStore(file, new Map(Object.entries(origins))),
  );
  return { board, file, dir, seen };
}

test('federation board - with a file: each edit is written first, token file paths kept, tokens never', async (t) => {
  const { board, file, dir } = await fileBoard(t, {
    dc2: { source: 'file', tokenFile: '/run/secrets/dc2', pinned: [] },
    dc3: { source: 'file', tokenFile: '', pinned: [] },
  });
  assert.equal(board.persistence, 'file');
  await board.editExports({ peer: 'dc3', add: ['api'], remove: [] });
  const token = path.join(dir, 'dc4');
  await writeFile(token, 'four');
  const put = await board.putPeer('dc4', { addresses: ['ws://d:1'], tokenFile: token, exports: ['web'] });
  assert.equal(put.peer.source, 'file', 'once written, a peer added by the API is one of the file');
  const text = await readFile(file, 'utf8');
  assert.deepEqual(JSON.parse(text), {
    peers: [
      { name: 'dc2', addresses: ['ws://b:1'], tokenFile: '/run/secrets/dc2', exports: ['web'] },
      { name: 'dc3', addresses: ['ws://c:1'], exports: ['api'] },
      { name: 'dc4', addresses: ['ws://d:1'], tokenFile: token, exports: ['web'] },
    ],
  });
  assert.ok(!/two|three|four/.test(text), 'no token in the file');
  assert.equal((await stat(file)).mode & 0o777, 0o640, 'the file keeps its mode');
  assert.deepEqual(await readdir(dir), ['dc4', 'federation.json'], 'no temp file left');
  await board.removePeer('dc2');
  assert.deepEqual(
    (JSON.parse(await readFile(file, 'utf8')) as { peers: { name: string }[] }).peers.map((p) => p.name),
    ['dc3', 'dc4'],
  );
});

test('federation board - with a file: what the variables give is refused by name, a failed write applies nothing', async (t) => {
  const { board, file, dir, seen } = await fileBoard(t, {
    dc2: { source: 'file', tokenFile: '/t', pinned: ['web'] },
    dc3: { source: 'env', tokenFile: '', pinned: [] },
  });
  const env = await rejected(board.editExports({ peer: 'dc3', add: ['a'], remove: [] }));
  assert.deepEqual([env.code, env.fields[0]?.path], ['invalid_argument', 'peer']);
  assert.match(env.message, /MESHREG_FEDERATION_PEERS/);
  const pinned = await rejected(board.editExports({ peer: 'dc2', add: [], remove: ['web'] }));
  assert.deepEqual([pinned.code, pinned.fields[0]?.path], ['invalid_argument', 'remove']);
  assert.match(pinned.message, /MESHREG_FEDERATION_EXPORTS/);
  const removal = await rejected(board.removePeer('dc2'));
  assert.deepEqual([removal.code, removal.fields[0]?.path], ['invalid_argument', 'name']);
  assert.equal((await rejected(board.removePeer('dc3'))).fields[0]?.path, 'name');

  // The file's folder is gone: the write fails, the edit is not applied and nobody is told.
  await rm(dir, { recursive: true });
  const failed = await rejected(board.editExports({ peer: 'dc2', add: ['api'], remove: [] }));
  assert.equal(failed.code, 'internal');
  assert.match(failed.message, new RegExp(`cannot write MESHREG_FEDERATION_FILE ${file}: .*not applied`));
  assert.deepEqual(board.state, START);
  assert.equal(seen.length, 0);
  await mkdir(dir);
  await writeFile(file, '{"peers":[]}');
  const ok = await board.editExports({ peer: 'dc2', add: ['api'], remove: [] });
  assert.deepEqual(ok.peer.exports, ['api', 'web'], 'the board works again once the file can be written');
});

test('federation board - the file writer replaces the file whole', async (t) => {
  const dir = await tmp(t);
  const file = path.join(dir, 'f.json');
  await writeFile(file, 'old', { mode: 0o600 });
  await writeFederationFile(file, [{ name: 'dc2', addresses: ['ws://a'], exports: [] }]);
  assert.equal(
    await readFile(file, 'utf8'),
    '{\n  "peers": [\n    {\n      "name": "dc2",\n      "addresses": [\n        "ws://a"\n      ],\n      "exports": []\n    }\n  ]\n}\n',
  );
  assert.equal((await stat(file)).mode & 0o777, 0o600);
});

// ---- the per-peer summary -------------------------------------------------------------------------

function link(over: Partial<PeerLinkStatus>): PeerLinkStatus {
  return {
    name: 'dc2',
    state: 'linked',
    stale: false,
    lastSyncAt: 1000,
    lagMs: 5,
    services: 3,
    instances: 9,
    exportsToUs: ['web'],
    notices: 1,
    digests: 2,
    repairs: 0,
    bytesIn: 100,
    importers: 1,
    bytesOut: 50,
    ...over,
  };
}

test('federation ops - a peer sums up its sessions: linked wins, silent sessions are unknown', () => {
  const peer = { name: 'dc2', addresses: ['ws://b'], exports: ['web'], source: 'file' as const };
  const answers = new Map<string, SessionFederationStatus>([
    [
      's1',
      {
        sessionId: 's1',
        datacenter: 'dc1',
        peers: [link({ state: 'down', stale: true, lastSyncAt: 500, lagMs: 90 })],
      },
    ],
    [
      's2',
      { sessionId: 's2', datacenter: 'dc1', peers: [link({ lastSyncAt: 2000, lagMs: 7, services: 4 })] },
    ],
    ['s3', { sessionId: 's3', datacenter: 'dc1', peers: [] }],
  ]);
  const v = peerView(peer, answers, ['s0']);
  assert.deepEqual([v.state, v.stale, v.lastSyncAt, v.lagMs, v.services], ['linked', false, 2000, 7, 4]);
  assert.deepEqual(
    v.sessions.map((s) => [s.sessionId, s.state]),
    [
      ['s0', 'unknown'],
      ['s1', 'down'],
      ['s2', 'linked'],
      ['s3', 'unknown'],
    ],
  );
  const none = peerView(peer, new Map(), ['s1']);
  assert.deepEqual(
    [none.state, none.stale, none.lastSyncAt, none.lagMs, none.services],
    ['unknown', true, null, null, 0],
  );
  const answer = { datacenter: 'dc1', version: 3, persistence: 'file', peers: [v, none] };
  const decoded = decodeAdminFederation(JSON.parse(JSON.stringify(answer)));
  assert.deepEqual(decoded, { ok: true, value: answer }, 'what meta answers, ctl decodes');
  assert.deepEqual([ageText(null, 0), ageText(0, 5000), ageText(0, 600_000)], ['never', '5s ago', '10m ago']);
});
