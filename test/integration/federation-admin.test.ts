/**
 * Operating federation on a real `meshreg server` (meta, data and session in one process) whose
 * federation file names a peer at a closed port: meta lists the peer with each session's link (a real
 * status, or `unknown` while a session does not answer for it) and never its token; export lists and
 * peers change without a restart, are written to the file and survive one; bad bodies are 400 naming
 * the field; without the admin token 401; `meshreg ctl federation` does the same end to end.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { httpBase } from '../support/admin.js';
import { ctl } from '../support/ctl.js';
import { http, type JsonResponse } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { startMeshreg, tempDir, type Started } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const ADMIN = 'fed-admin-token';
const PAIR_TOKEN = 'pair-token-never-shown';
const NEW_TOKEN = 'another-pair-token-never-shown';

interface Peer {
  name: string;
  addresses: string[];
  exports: string[];
  source: string;
  state: string;
  stale: boolean;
  sessions: { sessionId: string; state: string }[];
}
interface Federation {
  datacenter: string;
  version: number;
  persistence: string;
  peers: Peer[];
}

describe('federation admin', () => {
  let server: Started | undefined;
  let dir = '';
  let file = '';
  let env: Record<string, string> = {};
  let cleanup: () => Promise<void> = () => Promise.resolve();
  const meta = (): string => httpBase(server?.addresses['meta'] ?? '');
  const call = (method: string, p: string, body?: unknown, token = ADMIN): Promise<JsonResponse> =>
    http(method, `${meta()}${p}`, body, {
      ...(token === '' ? {} : { authorization: `Bearer ${token}` }),
      'content-type': 'application/json',
    });
  const federation = async (): Promise<Federation> => {
    const r = await call('GET', '/admin/federation');
    assert.equal(r.status, 200, r.text);
    assert.ok(!r.text.includes('never-shown'), 'no token in the answer');
    return r.body as Federation;
  };
  const fileText = (): Promise<string> => readFile(file, 'utf8');
  const filePeers = async (): Promise<{ name: string; exports: string[]; tokenFile?: string }[]> =>
    (JSON.parse(await fileText()) as { peers: { name: string; exports: string[]; tokenFile?: string }[] })
      .peers;
  const start = async (): Promise<void> => {
    server = await startMeshreg('server', {
      MESHREG_TOKEN: 'agent-token',
      MESHREG_ADMIN_TOKEN: ADMIN,
      MESHREG_DATACENTER: 'dc1',
      MESHREG_FEDERATION_FILE: file,
      MESHREG_FEDERATION_DIGEST_MS: '500',
    });
    env = { MESHREG_CTL_META: meta(), MESHREG_ADMIN_TOKEN: ADMIN };
  };

  before(async () => {
    const tmp = await tempDir('meshreg-fed-admin-');
    cleanup = tmp.cleanup;
    dir = tmp.dir;
    file = path.join(dir, 'federation.json');
    await writeFile(path.join(dir, 'dc2.token'), `${PAIR_TOKEN}\n`, { mode: 0o600 });
    await writeFile(path.join(dir, 'dc3.token'), `${NEW_TOKEN}\n`, { mode: 0o600 });
    const closed = await freePort();
    const peers = [
      {
        name: 'dc2',
        addresses: [`ws://127.0.0.1:${closed}`],
        tokenFile: path.join(dir, 'dc2.token'),
        exports: ['web'],
      },
    ];
    await writeFile(file, JSON.stringify({ peers }), { mode: 0o640 });
    await start();
  });

  after(async () => {
    await server?.stop();
    await cleanup();
  });

  test('federation admin - GET lists the peer, its exports and each session, never a token', async () => {
    const f = await waitFor(
      'the session listed under the peer',
      async () => {
        const got = await federation();
        return got.peers[0]?.sessions.length === 1 && got;
      },
      15_000,
      100,
    );
    assert.equal(f.datacenter, 'dc1');
    assert.equal(f.persistence, 'file');
    assert.equal(f.peers.length, 1);
    const p = f.peers[0];
    assert.equal(p?.name, 'dc2');
    assert.equal(p?.source, 'file');
    assert.deepEqual(p?.exports, ['web']);
    assert.match(p?.addresses[0] ?? '', /^ws:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(p?.stale, true, 'nothing is linked to a closed port');
    assert.notEqual(p?.state, 'linked');
    assert.equal(p?.sessions.length, 1, 'the one session is listed');
    // A real status once sessions report one; `unknown` while they do not answer for it.
    assert.ok(['unknown', 'connecting', 'down'].includes(p?.sessions[0]?.state ?? ''), p?.sessions[0]?.state);
  });

  test('federation admin - without the admin token 401, with a wrong one 401', async () => {
    assert.equal((await call('GET', '/admin/federation', undefined, '')).status, 401);
    assert.equal((await call('GET', '/admin/federation', undefined, 'wrong')).status, 401);
    const w = await call('POST', '/admin/federation/exports', { peer: 'dc2', add: ['x'] }, '');
    assert.equal(w.status, 401);
    assert.deepEqual((await filePeers())[0]?.exports, ['web'], 'a refused write changes nothing');
  });

  test('federation admin - a bad body is a 400 naming the field; an unknown peer 404', async () => {
    const fields = (r: JsonResponse): string[] =>
      ((r.body as { error: { fields?: { path: string }[] } }).error.fields ?? []).map((f) => f.path);
    const badService = await call('POST', '/admin/federation/exports', { peer: 'dc2', add: ['bad name'] });
    assert.equal(badService.status, 400);
    assert.equal(fields(badService)[0], 'add[0]');
    const noPeer = await call('POST', '/admin/federation/exports', { add: ['web'] });
    assert.deepEqual([noPeer.status, fields(noPeer)], [400, ['peer']]);
    const inline = await call('PUT', '/admin/federation/peers/dc3', {
      addresses: ['ws://127.0.0.1:1'],
      tokenFile: path.join(dir, 'dc3.token'),
      token: 'inline',
    });
    assert.deepEqual([inline.status, fields(inline)], [400, ['token']]);
    const badName = await call('PUT', '/admin/federation/peers/bad.name', {
      addresses: ['ws://127.0.0.1:1'],
      tokenFile: path.join(dir, 'dc3.token'),
    });
    assert.deepEqual([badName.status, fields(badName)], [400, ['name']]);
    const missing = await call('PUT', '/admin/federation/peers/dc3', {
      addresses: ['ws://127.0.0.1:1'],
      tokenFile: path.join(dir, 'missing.token'),
    });
    assert.deepEqual([missing.status, fields(missing)], [400, ['tokenFile']]);
    const unknown = await call('POST', '/admin/federation/exports', { peer: 'dc9', add: ['web'] });
    assert.equal(unknown.status, 404);
    assert.equal((await call('DELETE', '/admin/federation/peers/dc9')).status, 404);
    assert.equal((await federation()).peers.length, 1, 'nothing was applied');
  });

  test('federation admin - edits apply without restart, are written to the file, audited, and survive a restart', async () => {
    const prior = await federation();
    const edit = await call('POST', '/admin/federation/exports', {
      peer: 'dc2',
      add: ['api', 'billing'],
      remove: ['web'],
      reason: 'open api to dc2',
    });
    assert.equal(edit.status, 200, edit.text);
    const after1 = await federation();
    assert.ok(after1.version > prior.version, 'a new configuration version');
    assert.deepEqual(after1.peers[0]?.exports, ['api', 'billing']);
    assert.deepEqual((await filePeers())[0]?.exports, ['api', 'billing']);

    const put = await call('PUT', '/admin/federation/peers/dc3', {
      addresses: ['ws://127.0.0.1:1'],
      tokenFile: path.join(dir, 'dc3.token'),
      exports: ['web'],
    });
    assert.equal(put.status, 201, put.text);
    assert.deepEqual(
      (await federation()).peers.map((p) => [p.name, p.exports]),
      [
        ['dc2', ['api', 'billing']],
        ['dc3', ['web']],
      ],
    );
    const text = await fileText();
    assert.ok(!text.includes('never-shown'), 'the file holds token file paths, never tokens');
    assert.equal((await filePeers())[1]?.tokenFile, path.join(dir, 'dc3.token'));

    const audit = await call('GET', '/admin/console/audit?limit=10');
    const records = (audit.body as { records: { action: string; target: string; reason: string }[] }).records;
    assert.ok(
      records.some(
        (r) =>
          r.action === 'federation.exports.edit' &&
          r.reason === 'open api to dc2' &&
          r.target.startsWith('dc2'),
      ),
    );
    assert.ok(records.some((r) => r.action === 'federation.peer.put' && r.target === 'dc3'));

    await server?.stop();
    await start();
    assert.deepEqual(
      (await federation()).peers.map((p) => [p.name, p.exports, p.source]),
      [
        ['dc2', ['api', 'billing'], 'file'],
        ['dc3', ['web'], 'file'],
      ],
      'a restarted meta starts from the file',
    );
  });

  test('federation admin - meshreg ctl federation lists, edits exports and removes a peer', async () => {
    const table = await ctl(['federation'], env);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /edits written to the federation file/);
    assert.match(table.stdout, /^PEER\s+STATE\s+STALE\s+LASTSYNC\s+LAGMS\s+EXPORTS\s+IMPORTED/m);
    assert.match(table.stdout, /^dc2\s+\S+\s+true\s+never\s+/m);
    const json = await ctl(['--json', 'federation'], env);
    assert.equal(json.code, 0, json.stderr);
    assert.ok(!json.stdout.includes('never-shown'));
    assert.deepEqual(
      (JSON.parse(json.stdout) as Federation).peers.map((p) => p.name),
      ['dc2', 'dc3'],
    );

    const add = await ctl(['federation', 'export', 'add', 'dc2', 'orders', 'search', '--reason', 'ctl'], env);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /exports:\s+api, billing, orders, search/);
    const remove = await ctl(['federation', 'export', 'remove', 'dc2', 'billing'], env);
    assert.equal(remove.code, 0, remove.stderr);
    assert.deepEqual((await filePeers())[0]?.exports, ['api', 'orders', 'search']);

    const gone = await ctl(['federation', 'peer', 'remove', 'dc3'], env);
    assert.equal(gone.code, 0, gone.stderr);
    assert.match(gone.stdout, /removed peer dc3/);
    assert.deepEqual(
      (await filePeers()).map((p) => p.name),
      ['dc2'],
    );
    assert.deepEqual(
      (await federation()).peers.map((p) => p.name),
      ['dc2'],
    );

    const set = await ctl(
      [
        'federation',
        'peer',
        'set',
        'dc4',
        '--address',
        'ws://127.0.0.1:1',
        '--token-file',
        path.join(dir, 'dc3.token'),
        '--exports',
        'web',
      ],
      env,
    );
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /peer dc4 \(file\)/);

    const unknown = await ctl(['federation', 'export', 'add', 'dc9', 'web'], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /404 not_found: no federation peer dc9/);
    const usage = await ctl(['federation', 'export', 'add', 'dc2'], env);
    assert.equal(usage.code, 2);
    const help = await ctl(['--help'], env);
    assert.match(help.stdout, /federation export add\|remove <peer> <service>/);
  });
});
