/**
 * Keeps a link honest: pings every `intervalMs` and disconnects when nothing has been heard for
 * `timeoutMs`. Depends only on the narrow {@link LivenessPeer}, so tests drive it with mock timers.
 */
export interface LivenessPeer {
  sendPing(): void;
  disconnect(reason: string): void;
}

export class Liveness {
  #lastHeard: number;
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly peer: LivenessPeer,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly now: () => number = Date.now,
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

  stop(): void {
    clearInterval(this.#timer);
  }

  #tick(): void {
    const silentMs = this.now() - this.#lastHeard;
    if (silentMs >= this.timeoutMs) {
      this.stop();
      this.peer.disconnect(`nothing heard for ${silentMs} ms`);
      return;
    }
    this.peer.sendPing();
  }
}
