/**
 * TLS material of a process, loaded from the files named in its {@link TlsConfig}, and reloaded
 * without a restart: on SIGHUP, and when a file's size or modification time changes (checked every
 * `reloadMs`). A reload that fails (a half-written file, a key that does not match) keeps the
 * material in use and logs why; a good one is handed to every server registered with
 * {@link TlsSource.serve} (`server.setSecureContext`) and used by the next client connection.
 * Established connections keep the certificates they were made with.
 *
 * Servers: with a CA, a client must present a certificate signed by it (mTLS). Clients: the
 * server is always verified, against the CA (or the system's CAs without one), host name included.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import tls from 'node:tls';
import { MeshregError } from '../errors.js';
import { fail, ok, type Result } from '../result.js';
import type { Logger } from './log.js';
import { TLS_ENV, tlsConfigured, type TlsConfig } from './tls-config.js';

/** The PEM bytes read from the files ('' parts are absent). */
interface Material {
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
  readonly ca: Buffer | undefined;
  /** Size and mtime of each file when read: a change starts a reload. */
  readonly stamp: string;
}

/** What a TLS client connects with: this process's certificate and CA, and the server checks. */
export type TlsClientOptions = Pick<
  tls.ConnectionOptions,
  'cert' | 'key' | 'ca' | 'minVersion' | 'rejectUnauthorized' | 'servername'
>;

/** A TLS server whose context can be swapped (`https.Server` is one). */
export interface ReloadableServer {
  setSecureContext(options: tls.SecureContextOptions): void;
}

export class TlsSource {
  readonly #config: TlsConfig;
  readonly #servers = new Set<ReloadableServer>();
  #material: Material;
  /** The files' stamp at the last reload attempt, good or not: only a new change retries. */
  #seenStamp: string;
  #timer: NodeJS.Timeout | undefined;
  #onSighup: (() => void) | undefined;

  private constructor(config: TlsConfig, material: Material) {
    this.#config = config;
    this.#material = material;
    this.#seenStamp = material.stamp;
  }

  /**
   * Reads and checks the files: unreadable, not PEM, or a certificate that does not match its key
   * is a failure naming the variable(s). Undefined when no TLS is configured.
   */
  static load(config: TlsConfig): Result<TlsSource | undefined> {
    if (!tlsConfigured(config)) return ok(undefined);
    const m = readMaterial(config);
    return m.ok ? ok(new TlsSource(config, m.value)) : m;
  }

  /** True when this process serves TLS (it has a certificate and its key). */
  get serving(): boolean {
    return this.#material.cert !== undefined && this.#material.key !== undefined;
  }

  /** True when clients without a certificate may still read the probe paths (see {@link TlsConfig}). */
  get probesWithoutClientCert(): boolean {
    return this.#config.probesWithoutClientCert;
  }

  /** True when clients must present a certificate (a CA is configured). */
  get verifiesClients(): boolean {
    return this.#material.ca !== undefined;
  }

  /** The end of the certificate's validity, or undefined without one (for a warning at start). */
  get certValidTo(): Date | undefined {
    const cert = this.#material.cert;
    return cert === undefined ? undefined : new Date(new X509Certificate(cert).validTo);
  }

  /**
   * Options of a TLS server (`https.createServer`). With a CA, client certificates are asked for
   * and verified, but OpenSSL does not close on a failure by itself (it would not say why): the
   * server must destroy every secure connection whose `authorized` is false (role-server does,
   * before reading from it, and logs `authorizationError`).
   */
  serverOptions(): tls.TlsOptions {
    const m = this.#material;
    return {
      ...secureContextOf(m),
      minVersion: this.#config.minVersion,
      requestCert: m.ca !== undefined,
      rejectUnauthorized: false,
    };
  }

  /** Options of a TLS client: verifies the server (name included); presents this process's certificate. */
  clientOptions(): TlsClientOptions {
    return {
      ...secureContextOf(this.#material),
      minVersion: this.#config.minVersion,
      rejectUnauthorized: true,
      ...(this.#config.serverName === '' ? {} : { servername: this.#config.serverName }),
    };
  }

  /** Keeps `server`'s certificates current on every reload; returns the function that stops it. */
  serve(server: ReloadableServer): () => void {
    this.#servers.add(server);
    return () => this.#servers.delete(server);
  }

  /**
   * Reads the files again; when they changed and are good, swaps them in. Returns whether they
   * changed, or why the new ones were refused (the old ones stay in use).
   */
  reload(): Result<boolean> {
    const m = readMaterial(this.#config);
    this.#seenStamp = m.ok ? m.value.stamp : stampOf(this.#config);
    if (!m.ok) return m;
    if (sameBytes(m.value, this.#material)) return ok(false);
    this.#material = m.value;
    const context = secureContextOf(m.value);
    for (const s of this.#servers) s.setSecureContext(context);
    return ok(true);
  }

  /** Reloads on SIGHUP and when a file changes; idempotent. Stop with {@link close}. */
  watch(logger: Logger): void {
    if (this.#onSighup !== undefined) return;
    const reload = (why: string): void => {
      const r = this.reload();
      if (!r.ok) logger.error('TLS files not reloaded; the previous ones stay in use', { why, err: r.error });
      else if (r.value)
        logger.info('TLS certificates reloaded', { why, validTo: this.certValidTo?.toISOString() });
    };
    this.#onSighup = () => {
      reload('SIGHUP');
    };
    process.on('SIGHUP', this.#onSighup);
    if (this.#config.reloadMs > 0) {
      this.#timer = setInterval(() => {
        if (stampOf(this.#config) !== this.#seenStamp) reload('file changed');
      }, this.#config.reloadMs);
      this.#timer.unref();
    }
  }

  close(): void {
    clearInterval(this.#timer);
    if (this.#onSighup !== undefined) process.off('SIGHUP', this.#onSighup);
    this.#onSighup = undefined;
    this.#servers.clear();
  }
}

function secureContextOf(m: Material): tls.SecureContextOptions {
  return {
    ...(m.cert === undefined ? {} : { cert: m.cert }),
    ...(m.key === undefined ? {} : { key: m.key }),
    ...(m.ca === undefined ? {} : { ca: m.ca }),
  };
}

function sameBytes(a: Material, b: Material): boolean {
  const eq = (x: Buffer | undefined, y: Buffer | undefined): boolean =>
    x === undefined ? y === undefined : y !== undefined && x.equals(y);
  return eq(a.cert, b.cert) && eq(a.key, b.key) && eq(a.ca, b.ca);
}

function stampOf(c: TlsConfig): string {
  return [c.certFile, c.keyFile, c.caFile]
    .map((f) => {
      if (f === '') return '-';
      try {
        const s = statSync(f);
        return `${String(s.size)}@${String(s.mtimeMs)}`;
      } catch {
        return 'missing';
      }
    })
    .join('|');
}

function readMaterial(c: TlsConfig): Result<Material> {
  const stamp = stampOf(c);
  const files: [keyof Omit<Material, 'stamp'>, string, string][] = [
    ['cert', c.certFile, TLS_ENV.cert],
    ['key', c.keyFile, TLS_ENV.key],
    ['ca', c.caFile, TLS_ENV.ca],
  ];
  const read: Partial<Record<'cert' | 'key' | 'ca', Buffer>> = {};
  for (const [part, file, variable] of files) {
    if (file === '') continue;
    try {
      read[part] = readFileSync(file);
    } catch (err) {
      return fail('invalid_argument', `${variable}: cannot read ${file}: ${messageOf(err)}`);
    }
  }
  const checked = checkMaterial(read);
  return checked === undefined ? ok({ cert: read.cert, key: read.key, ca: read.ca, stamp }) : fail(checked);
}

/** Each part must parse, and the certificate must match its key: OpenSSL checks both here. */
function checkMaterial(m: Partial<Record<'cert' | 'key' | 'ca', Buffer>>): MeshregError | undefined {
  const bad = (variable: string, err: unknown): MeshregError =>
    new MeshregError('invalid_argument', `${variable}: ${messageOf(err)}`);
  if (m.cert !== undefined) {
    try {
      new X509Certificate(m.cert);
    } catch (err) {
      return bad(TLS_ENV.cert, err);
    }
  }
  if (m.ca !== undefined) {
    try {
      tls.createSecureContext({ ca: m.ca });
      new X509Certificate(m.ca);
    } catch (err) {
      return bad(TLS_ENV.ca, err);
    }
  }
  if (m.cert !== undefined && m.key !== undefined) {
    try {
      tls.createSecureContext({ cert: m.cert, key: m.key });
    } catch (err) {
      return bad(`${TLS_ENV.cert} and ${TLS_ENV.key} do not match or cannot be used`, err);
    }
  }
  return undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
