/**
 * Real certificates for TLS tests, made with the `openssl` command in a temp dir: a CA, a node
 * certificate for 127.0.0.1/localhost (server and client use: control-plane roles dial each other),
 * an agent's client certificate, an expired one, one for another host name, and a second CA with a
 * node certificate of its own. EC P-256 keys keep generation fast.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A certificate and its key, as file paths. */
export interface CertPair {
  readonly cert: string;
  readonly key: string;
}

export interface TestCerts {
  readonly dir: string;
  /** CA certificate (PEM) of the cluster. */
  readonly ca: string;
  /** A second, unrelated CA. */
  readonly otherCa: string;
  /** SAN IP:127.0.0.1, DNS:localhost; server and client use. */
  readonly node: CertPair;
  /** CN agent; client use only. */
  readonly agent: CertPair;
  /** Like `node`, but its validity ended before it began (expired). */
  readonly expired: CertPair;
  /** Like `node`, for DNS:other.example only. */
  readonly wrongHost: CertPair;
  /** Like `node`, signed by `otherCa`. */
  readonly foreign: CertPair;
  /** Removes the directory. */
  cleanup(): Promise<void>;
}

/** True when `openssl` can be run (the tests say so and check what they can without it). */
export async function opensslAvailable(): Promise<boolean> {
  try {
    await run('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
}

async function openssl(args: readonly string[]): Promise<void> {
  await run('openssl', [...args], { timeout: 20_000 });
}

/** `openssl req` arguments that make a new unencrypted EC P-256 key in `file`. */
const newKey = (file: string): string[] => [
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:P-256',
  '-nodes',
  '-keyout',
  file,
];

async function makeCa(dir: string, name: string): Promise<CertPair> {
  const pair = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
  await openssl([
    'req',
    '-x509',
    ...newKey(pair.key),
    '-out',
    pair.cert,
    '-subj',
    `/CN=${name}`,
    '-days',
    '2',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return pair;
}

interface Leaf {
  readonly name: string;
  readonly ca: CertPair;
  readonly san?: string;
  readonly usage: string;
  /** Days of validity; -1 makes it expired at once. */
  readonly days: number;
}

let serial = 1000;

async function makeLeaf(dir: string, leaf: Leaf): Promise<CertPair> {
  const pair = { cert: path.join(dir, `${leaf.name}.pem`), key: path.join(dir, `${leaf.name}.key`) };
  const csr = path.join(dir, `${leaf.name}.csr`);
  const ext = path.join(dir, `${leaf.name}.ext`);
  await openssl(['req', ...newKey(pair.key), '-out', csr, '-subj', `/CN=${leaf.name}`]);
  const lines = ['basicConstraints=CA:FALSE', `extendedKeyUsage=${leaf.usage}`];
  if (leaf.san !== undefined) lines.push(`subjectAltName=${leaf.san}`);
  await writeFile(ext, `${lines.join('\n')}\n`);
  serial += 1;
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    leaf.ca.cert,
    '-CAkey',
    leaf.ca.key,
    '-set_serial',
    String(serial),
    '-days',
    String(leaf.days),
    '-extfile',
    ext,
    '-out',
    pair.cert,
  ]);
  return pair;
}

/** Generates every certificate of {@link TestCerts} in a new temp dir. */
export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshreg-certs-'));
  const ca = await makeCa(dir, 'ca');
  const otherCa = await makeCa(dir, 'other-ca');
  const local = 'IP:127.0.0.1,DNS:localhost';
  const both = 'serverAuth,clientAuth';
  const [node, agent, expired, wrongHost, foreign] = await Promise.all([
    makeLeaf(dir, { name: 'node', ca, san: local, usage: both, days: 2 }),
    makeLeaf(dir, { name: 'agent', ca, usage: 'clientAuth', days: 2 }),
    makeLeaf(dir, { name: 'expired', ca, san: local, usage: both, days: -1 }),
    makeLeaf(dir, { name: 'wrong-host', ca, san: 'DNS:other.example', usage: both, days: 2 }),
    makeLeaf(dir, { name: 'foreign', ca: otherCa, san: local, usage: both, days: 2 }),
  ]);
  return {
    dir,
    ca: ca.cert,
    otherCa: otherCa.cert,
    node,
    agent,
    expired,
    wrongHost,
    foreign,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The MESHREG_TLS_* variables of a process using `pair` (and `ca`, when given). */
export function tlsEnv(pair: CertPair | undefined, ca: string | undefined): Record<string, string> {
  return {
    ...(pair === undefined ? {} : { MESHREG_TLS_CERT_FILE: pair.cert, MESHREG_TLS_KEY_FILE: pair.key }),
    ...(ca === undefined ? {} : { MESHREG_TLS_CA_FILE: ca }),
  };
}
