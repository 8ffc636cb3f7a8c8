/**
 * The TLS settings of a process, read once from `MESHREG_TLS_*` variables: which PEM files hold its
 * certificate, its key and the CA that signs its peers, and how clients check a server's name.
 * Only files are accepted (not the PEM text in a variable): a key never sits in the environment of
 * every child process, and a file can be replaced in place to rotate it (see `tls.ts`).
 *
 * What is set decides what runs: a certificate with its key makes servers listen with TLS and
 * clients present it; a CA makes servers require client certificates signed by it (mTLS) and
 * clients verify servers against it instead of the system's CAs. Nothing set: plain links.
 */
import envVar from 'env-var';
import { boundedInt } from './env-bounds.js';

/** `MESHREG_TLS_MIN_VERSION` values: TLS 1.0 and 1.1 are not offered. */
export const TLS_MIN_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export type TlsMinVersion = (typeof TLS_MIN_VERSIONS)[number];

/** The variables, for error messages and the documentation tables. */
export const TLS_ENV = Object.freeze({
  cert: 'MESHREG_TLS_CERT_FILE',
  key: 'MESHREG_TLS_KEY_FILE',
  ca: 'MESHREG_TLS_CA_FILE',
  serverName: 'MESHREG_TLS_SERVER_NAME',
  minVersion: 'MESHREG_TLS_MIN_VERSION',
  reloadMs: 'MESHREG_TLS_RELOAD_MS',
  probesWithoutCert: 'MESHREG_TLS_PROBES_WITHOUT_CLIENT_CERT',
});

/** Bounds of `MESHREG_TLS_RELOAD_MS` (0 turns the file check off; SIGHUP still reloads). */
export const TLS_RELOAD_BOUNDS = { def: 10_000, min: 0, max: 3_600_000 } as const;

export interface TlsConfig {
  /** PEM certificate chain of this process ('' when none). */
  readonly certFile: string;
  /** PEM private key of {@link certFile} ('' when none). */
  readonly keyFile: string;
  /** PEM CA bundle peers are verified against ('' : servers ask no client certificate, clients use the system CAs). */
  readonly caFile: string;
  /** Name a client checks in the server's certificate instead of the URL's host ('' : the URL's host). */
  readonly serverName: string;
  readonly minVersion: TlsMinVersion;
  /** How often the files are checked for a change (0: only on SIGHUP). */
  readonly reloadMs: number;
  /**
   * With a CA: a client without a verified certificate may still `GET /live`, `/health` and
   * `/metrics` (orchestrator probes and scrapers cannot present one); everything else needs it.
   */
  readonly probesWithoutClientCert: boolean;
}

/** True when any file is set: URLs must then be `wss://`/`https://` (no plaintext fallback). */
export function tlsConfigured(c: TlsConfig): boolean {
  return c.certFile !== '' || c.keyFile !== '' || c.caFile !== '';
}

/** True when this process can serve TLS (certificate and key). */
export function tlsServing(c: TlsConfig): boolean {
  return c.certFile !== '' && c.keyFile !== '';
}

/**
 * Reads the TLS variables. A certificate without its key (or the reverse) is an error naming both
 * variables; so is, with `server`, a CA without a certificate (a server cannot verify clients
 * without serving TLS itself).
 */
export function readTlsConfig(env: NodeJS.ProcessEnv, opts: { server: boolean }): TlsConfig {
  const e = envVar.from(env);
  const str = (name: string): string => e.get(name).default('').asString().trim();
  const certFile = str(TLS_ENV.cert);
  const keyFile = str(TLS_ENV.key);
  const caFile = str(TLS_ENV.ca);
  if ((certFile === '') !== (keyFile === '')) {
    const [set, unset] = certFile === '' ? [TLS_ENV.key, TLS_ENV.cert] : [TLS_ENV.cert, TLS_ENV.key];
    throw new Error(`${set} is set but ${unset} is not: TLS needs both the certificate and its key`);
  }
  if (opts.server && caFile !== '' && certFile === '') {
    throw new Error(
      `${TLS_ENV.ca} is set without ${TLS_ENV.cert} and ${TLS_ENV.key}: a server verifies clients only over TLS`,
    );
  }
  return Object.freeze({
    certFile,
    keyFile,
    caFile,
    serverName: str(TLS_ENV.serverName),
    minVersion: e
      .get(TLS_ENV.minVersion)
      .default('TLSv1.2')
      .asEnum([...TLS_MIN_VERSIONS]),
    reloadMs: boundedInt(
      env,
      TLS_ENV.reloadMs,
      TLS_RELOAD_BOUNDS.def,
      TLS_RELOAD_BOUNDS.min,
      TLS_RELOAD_BOUNDS.max,
    ),
    probesWithoutClientCert: e.get(TLS_ENV.probesWithoutCert).default('false').asBool(),
  });
}

/**
 * Refuses a plaintext URL when TLS is configured: `ws://` or `http://` would silently send tokens
 * and registrations in the clear (the lesson of CVE-2018-19653). Returns the error text, or
 * undefined when the URL is fine.
 */
export function plaintextRefusal(c: TlsConfig, url: string, variable: string): string | undefined {
  if (!tlsConfigured(c) || !/^(ws|http):\/\//i.test(url.trim())) return undefined;
  return `${variable}: ${url} is plain text while TLS is configured (${TLS_ENV.cert}/${TLS_ENV.ca}); use wss:// or https://`;
}

/**
 * True for an address no other host can reach (127.0.0.0/8, ::1, also IPv4-mapped): a server bound
 * elsewhere without TLS is warned about at start.
 */
export function isLoopbackAddress(address: string): boolean {
  const a = address.replace(/^::ffff:/i, '');
  return a === '::1' || a.startsWith('127.');
}
