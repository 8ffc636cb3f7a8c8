/**
 * The recorded history of one robustness schedule: what the load did (registrations and
 * deregistrations, with the agent's answer), what every subscriber was told (blocking query answers
 * with their `X-Consul-Index`, pushed datum versions), which faults were injected when, which agents
 * were killed on purpose, and every write of the slot table seen in etcd. The checker
 * (`checker.ts`) is a pure function of this value; the recorder only appends, in arrival order.
 *
 * Times are milliseconds since the epoch (`Date.now()` of the runner process).
 */

/** One registration or deregistration issued by the load on an agent's Consul API. */
export interface OpEvent {
  readonly kind: 'register' | 'deregister';
  /** When the request was sent and when its answer came back. */
  readonly start: number;
  readonly end: number;
  readonly service: string;
  readonly id: string;
  readonly agent: string;
  /**
   * `true`: the agent accepted it; `false`: it surely did not happen; `'unknown'`: the request
   * failed in a way that leaves its effect open (a timeout, a socket reset).
   */
  readonly ok: boolean | 'unknown';
  /** The agent's `X-Consul-Index` after the operation, when it answered. */
  readonly index?: number;
}

/** One answer a subscriber got. */
export interface Observation {
  readonly time: number;
  /** Who was told: `<agent>#<incarnation>/<service>/<how>`; one ordered stream per subscriber. */
  readonly subscriber: string;
  readonly agent: string;
  readonly service: string;
  /** `blocking`: a blocking query answer; `poll`: a plain read; `push`: the agent's pushed datum version. */
  readonly via: 'blocking' | 'poll' | 'push';
  /** `X-Consul-Index` (blocking, poll) or the datum version (push). */
  readonly index: number;
  /** The instance ids answered (blocking, poll); absent for pushes. */
  readonly ids?: readonly string[];
}

/** A fault and its end, or a one-off action (a cut). */
export interface FaultEvent {
  readonly time: number;
  readonly phase: 'start' | 'end' | 'instant';
  /** `kill`, `stop`, `blackhole-up`, `delay-both`, `throttle-down`, `cut`, `heal-all`, … */
  readonly what: string;
  readonly target: string;
}

/** An agent killed on purpose (its instances may leave after the grace) or brought back. */
export interface AgentEvent {
  readonly time: number;
  readonly agent: string;
  readonly phase: 'killed' | 'restarted';
}

/** One put of the slot table seen by watching etcd. */
export interface TableWrite {
  readonly time: number;
  readonly epoch: number;
  /** etcd's mod revision of the put. */
  readonly revision: number;
  /** The meta whose etcd link carried the table's bytes, or `unknown`. */
  readonly writer: string;
}

/** What a meta's `/health` said at one poll. */
export interface LeaderPoll {
  readonly time: number;
  readonly meta: string;
  readonly leader: boolean;
  readonly epoch: number;
}

/** Everything recorded during one schedule; `healedAt` is set once the faults are healed. */
export interface History {
  readonly seed: number;
  readonly startedAt: number;
  /** When every fault was healed and the load stopped; convergence is measured from here. */
  healedAt: number;
  /** How long after the heal every subscriber must show exactly the registered set. */
  readonly convergeBoundMs: number;
  /** How long instances of a killed agent are kept (they may leave only after it). */
  readonly agentGraceMs: number;
  readonly ops: OpEvent[];
  readonly observations: Observation[];
  readonly faults: FaultEvent[];
  readonly agents: AgentEvent[];
  readonly tableWrites: TableWrite[];
  readonly leaderPolls: LeaderPoll[];
  /** "elected meta leader" lines from the metas' logs (time of the line, which meta). */
  readonly elections: { readonly time: number; readonly meta: string }[];
}

/** A new, empty history. */
export function newHistory(
  seed: number,
  convergeBoundMs: number,
  agentGraceMs: number,
  startedAt = Date.now(),
): History {
  return {
    seed,
    startedAt,
    healedAt: Number.POSITIVE_INFINITY,
    convergeBoundMs,
    agentGraceMs,
    ops: [],
    observations: [],
    faults: [],
    agents: [],
    tableWrites: [],
    leaderPolls: [],
    elections: [],
  };
}

/** Every event of a history as one line of text, in time order: what an excerpt is cut from. */
export function historyLines(h: History): { time: number; line: string }[] {
  const t = (ms: number): string => `+${String(ms - h.startedAt).padStart(6)}ms`;
  const out: { time: number; line: string }[] = [];
  for (const o of h.ops)
    out.push({
      time: o.start,
      line: `${t(o.start)} ${o.kind} ${o.service}/${o.id} on ${o.agent} -> ${String(o.ok)} (${o.end - o.start} ms${o.index === undefined ? '' : `, index ${o.index}`})`,
    });
  for (const o of h.observations)
    out.push({
      time: o.time,
      line: `${t(o.time)} ${o.subscriber} index ${o.index}${o.ids === undefined ? '' : ` [${o.ids.join(',')}]`}`,
    });
  for (const f of h.faults)
    out.push({ time: f.time, line: `${t(f.time)} fault ${f.phase} ${f.what} ${f.target}` });
  for (const a of h.agents) out.push({ time: a.time, line: `${t(a.time)} agent ${a.agent} ${a.phase}` });
  for (const w of h.tableWrites)
    out.push({
      time: w.time,
      line: `${t(w.time)} slot table epoch ${w.epoch} rev ${w.revision} by ${w.writer}`,
    });
  for (const e of h.elections)
    out.push({ time: e.time, line: `${t(e.time)} ${e.meta} logged "elected meta leader" (slot table)` });
  if (Number.isFinite(h.healedAt)) out.push({ time: h.healedAt, line: `${t(h.healedAt)} healed` });
  return out.sort((a, b) => a.time - b.time);
}

/**
 * The lines of `h` within `aroundMs` of `time` that mention any of `keys` (all lines when `keys` is
 * empty), at most `max` of them: the context printed with a violation.
 */
export function excerpt(
  h: History,
  time: number,
  keys: readonly string[],
  aroundMs = 3000,
  max = 20,
): string[] {
  const lines = historyLines(h).filter(
    (l) =>
      Math.abs(l.time - time) <= aroundMs &&
      (keys.length === 0 || keys.some((k) => l.line.includes(k)) || l.line.includes(' fault ')),
  );
  const before = lines.filter((l) => l.time <= time).slice(-Math.ceil(max / 2));
  const after = lines.filter((l) => l.time > time).slice(0, Math.floor(max / 2));
  return [...before, ...after].map((l) => l.line);
}
