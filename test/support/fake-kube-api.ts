/**
 * A stand-in for the Kubernetes API server over HTTPS on a loopback port: a self-signed certificate
 * made with `openssl` (Debian package) for 127.0.0.1, a bearer token, and `GET /api/v1/nodes/:name`
 * answering the nodes it was given. `failFirst` answers 503 to that many requests first.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface FakeKubeApi {
  /** `https://127.0.0.1:port`. */
  readonly url: string;
  readonly port: number;
  /** A service-account folder (`token`, `ca.crt`) as the kubelet mounts it. */
  readonly serviceAccountDir: string;
  /** Requests seen, with the status answered. */
  readonly requests: { path: string; status: number }[];
  close(): Promise<void>;
}

export interface FakeKubeOptions {
  /** Node name → labels. */
  readonly nodes: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Answer 403 to every request (the ClusterRole is missing). */
  readonly forbid?: boolean;
  readonly failFirst?: number;
}

/** Starts the fake API server with files under `dir`. */
export async function startFakeKubeApi(dir: string, opts: FakeKubeOptions): Promise<FakeKubeApi> {
  const key = path.join(dir, 'api.key');
  const cert = path.join(dir, 'api.crt');
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=kube-apiserver'],
      ...['-keyout', key, '-out', cert, '-addext', 'subjectAltName=IP:127.0.0.1'],
    ],
    { stdio: 'ignore' },
  );
  const token = randomBytes(16).toString('hex');
  const serviceAccountDir = path.join(dir, 'serviceaccount');
  await mkdir(serviceAccountDir, { recursive: true });
  await writeFile(path.join(serviceAccountDir, 'token'), token);
  await writeFile(path.join(serviceAccountDir, 'ca.crt'), await readFile(cert));
  const requests: { path: string; status: number }[] = [];
  let failures = opts.failFirst ?? 0;
  const server = https.createServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => {
    const answer = (status: number, body: unknown): void => {
      requests.push({ path: req.url ?? '', status });
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const m = /^\/api\/v1\/nodes\/([^/?]+)$/.exec(req.url ?? '');
    if (req.headers.authorization !== `Bearer ${token}`) return answer(401, { kind: 'Status', code: 401 });
    if (opts.forbid === true) return answer(403, { kind: 'Status', code: 403, reason: 'Forbidden' });
    if (failures > 0) {
      failures--;
      return answer(503, { kind: 'Status', code: 503 });
    }
    const name = m?.[1] === undefined ? undefined : decodeURIComponent(m[1]);
    const labels = name === undefined ? undefined : opts.nodes[name];
    if (req.method !== 'GET' || labels === undefined) return answer(404, { kind: 'Status', code: 404 });
    return answer(200, { kind: 'Node', apiVersion: 'v1', metadata: { name, labels }, status: {} });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${String(port)}`,
    port,
    serviceAccountDir,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
