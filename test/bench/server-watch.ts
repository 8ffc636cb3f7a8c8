/**
 * What a workload learns about a control-plane process from outside while it runs: how late it
 * answers a trivial request (an external reading of its event-loop stalls), and what its log says
 * about members, sessions and agent links (expiries, dropped publishers, reconnects with close codes).
 */
import { request } from 'undici';
import { sleep } from './progress.js';
import { summarize, type Summary } from './stats.js';

/** Polls `GET <health>` every `intervalMs`; each answer's latency is how long the loop kept it waiting. */
export class StallProbe {
  readonly #url: string;
  readonly #intervalMs: number;
  readonly #latencies: number[] = [];
  #running = true;
  readonly #loop: Promise<void>;

  constructor(healthUrl: string, intervalMs = 100) {
    this.#url = healthUrl;
    this.#intervalMs = intervalMs;
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      const t = performance.now();
      try {
        const res = await request(this.#url, { headersTimeout: 120_000, bodyTimeout: 120_000 });
        await res.body.dump();
      } catch {
        // A refused request still measured how long it took to be refused.
      }
      this.#latencies.push(performance.now() - t);
      await sleep(this.#intervalMs);
    }
  }

  /** Stops polling; returns the latency distribution (ms). */
  async stop(): Promise<Summary> {
    this.#running = false;
    await this.#loop;
    return summarize(this.#latencies);
  }
}

/** Counts of the log lines that show a control plane judging its own members or agents lost. */
export interface ServerEvents {
  /** "member lease expired; removed" (meta expired a data or session member). */
  readonly memberExpiries: number;
  /** "member joined" beyond the first join of each member. */
  readonly memberRejoins: number;
  /** "session did not come back; dropping its publishers" (a data server dropped a session's publishers). */
  readonly publishersDropped: number;
  /** "agent connected" beyond the first connection of each agent node. */
  readonly agentReconnects: number;
  /** Close codes of "agent disconnected" lines, by code. */
  readonly agentCloseCodes: Readonly<Record<string, number>>;
}

interface LogLine {
  readonly msg?: string;
  readonly id?: string;
  readonly nodeName?: string;
  readonly code?: number;
}

/** Reads {@link ServerEvents} from a process's JSON log lines (it must log at info level). */
export function serverEvents(log: string): ServerEvents {
  let memberExpiries = 0;
  let publishersDropped = 0;
  const joins = new Map<string, number>();
  const connects = new Map<string, number>();
  const codes: Record<string, number> = {};
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    let rec: LogLine;
    try {
      rec = JSON.parse(line) as LogLine;
    } catch {
      continue;
    }
    if (rec.msg === 'member lease expired; removed') memberExpiries++;
    else if (rec.msg === 'session did not come back; dropping its publishers') publishersDropped++;
    else if (rec.msg === 'member joined') joins.set(rec.id ?? '', (joins.get(rec.id ?? '') ?? 0) + 1);
    else if (rec.msg === 'agent connected')
      connects.set(rec.nodeName ?? '', (connects.get(rec.nodeName ?? '') ?? 0) + 1);
    else if (rec.msg === 'agent disconnected') {
      const code = String(rec.code ?? 'none');
      codes[code] = (codes[code] ?? 0) + 1;
    }
  }
  const beyondFirst = (m: Map<string, number>): number => [...m.values()].reduce((n, c) => n + c - 1, 0);
  return {
    memberExpiries,
    memberRejoins: beyondFirst(joins),
    publishersDropped,
    agentReconnects: beyondFirst(connects),
    agentCloseCodes: codes,
  };
}
