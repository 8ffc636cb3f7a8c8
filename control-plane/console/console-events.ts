/**
 * `GET /admin/console/events`: server-sent events telling open console pages what changed, so they
 * re-fetch only that. While a page listens, meta looks at its members' change signals every poll
 * interval (so at most that many events a second) and sends `event: changed` with the parts whose
 * signal moved; a comment line every heartbeat keeps proxies from closing an idle stream. The number
 * of streams is bounded (429 `limit_exceeded` beyond it); every stream closes when meta stops.
 *
 * Admission is the admin API's `loopback-read`: loopback callers without a token read as
 * `anonymous` (an `EventSource` cannot send headers), others need a token (and `MESHREG_ADMIN_REMOTE`).
 */
import type http from 'node:http';
import type { ConsoleChanged, ConsolePart } from '../../proto/console.js';
import { MeshregError } from '../../proto/errors.js';
import { parseTarget, sendError } from '../../proto/runtime/http-edge.js';
import type { Logger } from '../../proto/runtime/log.js';
import { ANONYMOUS_CALLER, bearerToken, type AdminAuth, type HttpExtension } from '../admin/ops-http.js';
import { isLoopback } from './console-assets.js';
import type { MetaConsole } from './meta-console.js';

export const CONSOLE_EVENTS_PATH = '/admin/console/events';

export interface ConsoleEventsOptions {
  /** Streams open at once, at most (`MESHREG_CONSOLE_MAX_STREAMS`). */
  readonly maxStreams: number;
  readonly heartbeatMs: number;
  /** How often the change signals are looked at while a stream is open (≥ 250: ≤ 4 events/s). */
  readonly pollMs: number;
  readonly adminAuth: AdminAuth;
  readonly adminRemote: boolean;
  readonly logger: Logger;
}

type Signals = Readonly<Record<ConsolePart, string>>;

export class ConsoleEvents {
  readonly #console: MetaConsole;
  readonly #opts: ConsoleEventsOptions;
  readonly #streams = new Set<http.ServerResponse>();
  #timer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #last: Signals | undefined;
  #version = 0;
  #polling = false;
  #closed = false;

  constructor(console: MetaConsole, opts: ConsoleEventsOptions) {
    this.#console = console;
    this.#opts = opts;
  }

  /** Streams open now. */
  get streams(): number {
    return this.#streams.size;
  }

  /** The extension serving the stream on meta's port. */
  extension(): HttpExtension {
    return (req, res) => {
      const target = parseTarget(req.url);
      if (target instanceof MeshregError || target.path !== CONSOLE_EVENTS_PATH) return false;
      const refusal = this.#refusal(req);
      if (refusal !== undefined) {
        if (refusal.code === 'unauthorized')
          res.setHeader('www-authenticate', 'Bearer realm="meshreg-admin"');
        sendError(res, refusal);
        return true;
      }
      this.#open(res);
      return true;
    };
  }

  #refusal(req: http.IncomingMessage): MeshregError | undefined {
    if (req.method !== 'GET')
      return new MeshregError('method_not_allowed', 'the event stream is read with GET');
    if (this.#closed) return new MeshregError('shutting_down', 'meta is stopping');
    const loopback = isLoopback(req.socket.remoteAddress);
    if (!this.#opts.adminRemote && !loopback)
      return new MeshregError(
        'forbidden',
        'admin requests are accepted from loopback only (MESHREG_ADMIN_REMOTE)',
      );
    const token = bearerToken(req.headers.authorization);
    if (token === '' && loopback) return this.#full();
    if (!this.#opts.adminAuth.enabled())
      return new MeshregError('forbidden', 'the admin API is off: set MESHREG_ADMIN_TOKEN to turn it on');
    if (token === '' || this.#opts.adminAuth.authenticate(token) === undefined)
      return new MeshregError('unauthorized', token === '' ? 'missing bearer token' : 'wrong admin token');
    return this.#full();
  }

  #full(): MeshregError | undefined {
    if (this.#streams.size < this.#opts.maxStreams) return undefined;
    return new MeshregError(
      'limit_exceeded',
      `at most ${this.#opts.maxStreams} console event streams are open`,
    );
  }

  #open(res: http.ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    res.write(': meshreg console events\nretry: 2000\n\n');
    this.#streams.add(res);
    res.once('close', () => {
      this.#streams.delete(res);
      if (this.#streams.size === 0) this.#stopTimers();
    });
    this.#startTimers();
  }

  #startTimers(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(
      () => {
        void this.#poll();
      },
      Math.max(250, this.#opts.pollMs),
    );
    this.#heartbeat = setInterval(() => {
      for (const s of this.#streams) s.write(': heartbeat\n\n');
    }, this.#opts.heartbeatMs);
  }

  #stopTimers(): void {
    clearInterval(this.#timer);
    clearInterval(this.#heartbeat);
    this.#timer = undefined;
    this.#heartbeat = undefined;
    this.#last = undefined;
  }

  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const next = await this.#signals();
      const last = this.#last;
      this.#last = next;
      if (last === undefined) return;
      const parts = (Object.keys(next) as ConsolePart[]).filter((p) => next[p] !== last[p]);
      if (parts.length > 0) this.#send({ version: ++this.#version, parts });
    } catch (err) {
      this.#opts.logger.warn('console change poll failed', { err });
    } finally {
      this.#polling = false;
    }
  }

  async #signals(): Promise<Signals> {
    const s = await this.#console.summaries();
    const overview = await this.#console.overview(ANONYMOUS_CALLER, s);
    const services = [...s.data.answers]
      .map(([id, d]) => `${id}=${d.servicesVersion}`)
      .sort()
      .join(',');
    const agents = [...s.sessions.answers]
      .map(([id, x]) => `${id}=${x.agentsVersion}`)
      .sort()
      .join(',');
    return {
      overview: overview.version,
      services: `${services}|${s.data.unreachable.join(',')}`,
      agents: `${agents}|${s.sessions.unreachable.join(',')}`,
      audit: String(this.#console.audit.appended),
    };
  }

  #send(ev: ConsoleChanged): void {
    const frame = `event: changed\ndata: ${JSON.stringify(ev)}\n\n`;
    for (const s of this.#streams) s.write(frame);
  }

  /** Ends every stream and refuses new ones (meta is stopping). */
  close(): void {
    this.#closed = true;
    this.#stopTimers();
    for (const s of this.#streams) s.end();
    this.#streams.clear();
  }
}
