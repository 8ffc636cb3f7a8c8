/**
 * The agent's graceful stop (SIGTERM), in order: stop accepting and answer what is in flight
 * (blocking queries end early with their current answer), flush registrations and cached views to
 * disk, apply the shutdown mode, then leave the link. Each step is a logged phase of one deadline.
 *
 * The modes (`MESHREG_AGENT_SHUTDOWN`):
 * - `keep` (default): the agent is the source of truth and comes back; its registrations stay
 *   registered (the session keeps them for its client grace), once every acknowledged one reached it;
 * - `drain`: every registration is published as draining (EDS `DRAINING`, Consul critical) so
 *   traffic moves away, for `MESHREG_AGENT_DRAIN_MS`; then, with the link closed, they are written
 *   back undrained with a newer version, so a restarted agent publishes them again;
 * - `deregister`: everything is withdrawn, as `PUT /v1/agent/leave` does, and confirmed before exit.
 */
import type { Logger } from '../proto/runtime/log.js';
import { SHUTDOWN_RESERVE_MS, waitUntil, type ShutdownPhases } from '../proto/runtime/shutdown.js';
import type { LocalServices } from './local/local-services.js';

export type AgentShutdownMode = 'keep' | 'drain' | 'deregister';
export const AGENT_SHUTDOWN_MODES: readonly AgentShutdownMode[] = ['keep', 'drain', 'deregister'];

/** Longest wait for requests in flight to be answered once the agent stops accepting. */
const IN_FLIGHT_MS = 5_000;
/** Longest wait for the session to confirm the last changes before the link closes. */
const CONFIRM_MS = 5_000;

/** What the graceful stop needs of the agent. */
export interface ShutdownParts {
  readonly mode: AgentShutdownMode;
  /** How long `drain` keeps the registrations published as draining. */
  readonly drainMs: number;
  readonly log: Logger;
  readonly local: LocalServices;
  /** Whether the link to a session is open (nothing can be confirmed otherwise). */
  linkOpen(): boolean;
  /** Stops accepting and answers what is in flight within `waitMs`; resolves with the unanswered count. */
  stopServing(waitMs: number): Promise<number>;
  /** Stops what changes local state on its own (checks, definition files, drain timers). */
  quiesce(): void;
  /** Writes registrations and cached views to disk. */
  flush(): Promise<void>;
  /** Closes the link to the session: later changes are not sent. */
  leaveLink(): void;
  /** Withdraws every registration and writes it to disk (the graceful leave, which awaits confirmation). */
  withdrawAll(): Promise<void>;
  /** Closes the link to the session and the rest of the agent's resources. */
  closeLink(): Promise<void>;
}

/** Runs the agent's graceful stop within `phases`' deadline. Never leaves the link open. */
export async function stopAgent(p: ShutdownParts, phases: ShutdownPhases): Promise<void> {
  try {
    const unanswered = await phases.run('agent: stop accepting, answer in-flight requests', () =>
      p.stopServing(phases.budgetMs(IN_FLIGHT_MS, SHUTDOWN_RESERVE_MS)),
    );
    if (unanswered > 0) p.log.warn('requests still unanswered when the HTTP server closed', { unanswered });
    p.quiesce();
    await phases.run('agent: flush registrations and cache', () => p.flush());
    await phases.run(`agent: shutdown mode ${p.mode}`, () => applyMode(p, phases));
  } finally {
    await phases.run('agent: leave the link', () => p.closeLink());
  }
}

async function drain(
  p: ShutdownParts,
  phases: ShutdownPhases,
  confirm: () => Promise<boolean>,
): Promise<void> {
  // Those already draining (a deregistration in progress) stay deregistered.
  const marked = p.local.list().filter((r) => p.local.markDraining(r.def.id));
  await confirm();
  const waitMs = phases.budgetMs(p.drainMs, SHUTDOWN_RESERVE_MS);
  if (waitMs < p.drainMs) p.log.warn('drain cut short by the shutdown timeout', { waitMs });
  await new Promise((r) => setTimeout(r, waitMs));
  // The control plane keeps them draining until its client grace ends; the disk gets them back
  // undrained with a newer version (the draining one would win over the older one at a restart).
  p.leaveLink();
  for (const r of marked) p.local.register(r.def, r.checks, r.checkDefinitions);
  await p.flush();
}

async function applyMode(p: ShutdownParts, phases: ShutdownPhases): Promise<void> {
  const confirmed = (): boolean =>
    !p.linkOpen() || (p.local.tombstones().length === 0 && p.local.list().every((r) => r.synced));
  const confirm = (): Promise<boolean> =>
    waitUntil(confirmed, phases.budgetMs(CONFIRM_MS, SHUTDOWN_RESERVE_MS), 5);
  switch (p.mode) {
    case 'keep':
      // Every acknowledged registration reaches the session before the link closes.
      await confirm();
      break;
    case 'drain':
      await drain(p, phases, confirm);
      break;
    case 'deregister':
      await p.withdrawAll();
      await confirm();
      break;
    default: {
      const never: never = p.mode;
      throw new Error(`unknown shutdown mode ${String(never)}`);
    }
  }
  p.log.info('shutdown mode applied', {
    mode: p.mode,
    linkOpen: p.linkOpen(),
    unconfirmed: p.local.list().filter((r) => !r.synced).length + p.local.tombstones().length,
  });
}
