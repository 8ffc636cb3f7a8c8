/**
 * The agent's HTTP front: the shared {@link JsonRouter} (routes, 404/405, the bounded JSON body,
 * errors as JSON) behind a server that bounds what clients can hold. Nothing a request sends can
 * crash the process: the target is parsed without throwing and every listener runs inside the
 * shared safe edge.
 *
 * It also bounds what clients can hold (see the README's Limits table): open connections, blocking
 * queries per client address, the time to send headers and body, idle keep-alive; and it refuses
 * writes whose `Host` is not loopback or allowed (DNS rebinding).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  clientErrorHandler,
  listenOn,
  rateLimitedLog,
  safeListener,
  targetOf,
} from '../../proto/runtime/http-edge.js';
import type { JsonRouter } from '../../proto/runtime/json-router.js';
import type { Logger } from '../../proto/runtime/log.js';
import type { AgentHttpLimits } from '../config.js';
import { BlockingQuota, HostPolicy, isBlockingQuery } from './http-limits.js';

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly maxBodyBytes: number;
  readonly logger: Logger;
  readonly limits: AgentHttpLimits;
  /** Serves what it takes before the API routes (`meshreg dev`: the console); false lets them answer. */
  readonly extension?: ((req: http.IncomingMessage, res: http.ServerResponse) => boolean) | undefined;
}

/** How often Node checks the headers timeout (its default of 30 s would stretch a 10 s timeout to 40 s). */
const CONNECTIONS_CHECK_MS = 1000;

export class HttpServer {
  readonly #server: http.Server;
  readonly #router: JsonRouter;
  readonly #opts: HttpServerOptions;
  readonly #hosts: HostPolicy;
  readonly #blocking: BlockingQuota;
  #dropped = 0;

  constructor(router: JsonRouter, opts: HttpServerOptions) {
    this.#router = router;
    this.#opts = opts;
    this.#hosts = new HostPolicy(opts.host, opts.limits.allowedHosts);
    this.#blocking = new BlockingQuota(opts.limits.maxBlockingPerClient);
    this.#server = http.createServer(
      // Host is checked here, for writes only, with a JSON answer (Node's own check is a bare 400).
      { connectionsCheckingInterval: CONNECTIONS_CHECK_MS, requireHostHeader: false },
      safeListener(opts.logger, (req, res) => this.#serve(req, res)),
    );
    this.#server.on('clientError', clientErrorHandler(opts.logger));
    // Over the cap Node closes new sockets at once, before reading anything ('drop').
    this.#server.maxConnections = opts.limits.maxConnections;
    const edgeLog = rateLimitedLog(opts.logger);
    this.#server.on('drop', () => {
      this.#dropped++;
      edgeLog.warn('http connection refused: at the connection cap', {
        maxConnections: opts.limits.maxConnections,
        dropped: this.#dropped,
      });
    });
    this.#server.keepAliveTimeout = opts.limits.keepAliveTimeoutMs;
    // A blocking query may hold a request for up to 10 min + jitter: no whole-request timeout, but
    // the headers and (in the router's body reader) the body each have their own.
    this.#server.requestTimeout = 0;
    this.#server.headersTimeout = opts.limits.headersTimeoutMs;
  }

  /** Sockets closed unanswered because the connection cap was reached. */
  get droppedConnections(): number {
    return this.#dropped;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get address(): string {
    return `http://${this.#opts.host.includes(':') ? `[${this.#opts.host}]` : this.#opts.host}:${this.port}`;
  }

  async listen(): Promise<void> {
    await listenOn(this.#server, this.#opts.port, this.#opts.host);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Takes a blocking-query slot when the request is one; it is freed when the response closes. */
  #admit(req: http.IncomingMessage, res: http.ServerResponse, method: string, query: URLSearchParams): void {
    if (!isBlockingQuery(method, query)) return;
    const client = (req.socket.remoteAddress ?? '?').replace(/^::ffff:/, '');
    const release = this.#blocking.acquire(client);
    res.once('close', release);
  }

  async #serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const abort = new AbortController();
    res.on('close', () => {
      // Only a client that left before its answer aborts the handler; after a sent answer there is
      // nothing to stop, and an abort would allocate an exception per request.
      if (!res.writableFinished) abort.abort();
    });
    // A bad target or Host throws its 400/403, which the safe listener answers.
    const target = targetOf(req);
    // An absolute-form target's authority replaces Host (RFC 9112 §3.2.2), so check that one.
    this.#hosts.check(method, target.authority ?? req.headers.host);
    if (this.#opts.extension?.(req, res) === true) return;
    await this.#router.serve(req, res, target, {
      body: { maxBytes: this.#opts.maxBodyBytes, timeoutMs: this.#opts.limits.bodyTimeoutMs },
      signal: abort.signal,
      admitted: () => {
        this.#admit(req, res, method, target.query);
      },
    });
  }
}
