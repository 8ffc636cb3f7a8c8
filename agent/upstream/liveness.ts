/**
 * Keeps a link honest: pings every `intervalMs` and disconnects when nothing has been heard for
 * `timeoutMs`. Depends only on the narrow {@link LivenessPeer}, so tests drive it with mock timers.
 *
 * Silence is judged by live time ({@link loopMonitor}'s `liveNow`) by default: while this process
 * itself was stalled, the peer's frames sat unread in our buffers, and that is not the peer's
 * silence. A peer that said it is overloaded ({@link Liveness.extend}) gets its pause on top.
 */
import { loopMonitor } from '../../proto/runtime/loop-monitor.js';

export interface LivenessPeer {
  sendPing(): void;
  disconnect(reason: string): void;
}

export class Liveness {
  #lastHeard: number;
  /** Until then (in `now` time) silence is not judged: the peer asked us to bear with it. */
  #patientUntil = -Infinity;
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly peer: LivenessPeer,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly now: () => number = () => loopMonitor.liveNow(),
  ) {
    this.#lastHeard = now();
    this.#timer = setInterval(() => {
      this.#tick();
    }, intervalMs);
    this.#timer.unref();
  }

  /** Records that the peer said something. */
  heard(): void {
    this.#lastHeard = this.now();
  }

  /**
   * The peer said it is slow (a `slow_down` of `ms`): its silence counts from `ms` from now, so the
   * timeout is extended by that much, once (a later call replaces a shorter extension).
   */
  extend(ms: number): void {
    this.#patientUntil = Math.max(this.#patientUntil, this.now() + ms);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #tick(): void {
    const now = this.now();
    const silentMs = now - Math.max(this.#lastHeard, this.#patientUntil);
    if (silentMs >= this.timeoutMs) {
      this.stop();
      this.peer.disconnect(`nothing heard for ${Math.round(now - this.#lastHeard)} ms`);
      return;
    }
    this.peer.sendPing();
  }
}
