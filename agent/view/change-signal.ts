/**
 * One change signal: readers wait for the next change (bounded by a timeout and an abort signal),
 * a writer wakes them all. A service's blocking queries and the catalog's each have their own.
 */

type Waiter = () => void;

export class ChangeSignal {
  readonly #waiters = new Set<Waiter>();

  /** How many reads are waiting. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /**
   * Resolves on the next {@link wake}, after `timeoutMs`, or on abort — whichever comes first.
   * Never rejects. `onSettled` runs once the waiter is gone (to drop an empty signal).
   */
  wait(timeoutMs: number, signal?: AbortSignal, onSettled?: () => void): Promise<void> {
    // An aborted signal never fires 'abort' again: without this check the wait would run to its timeout.
    if (signal?.aborted === true) {
      onSettled?.();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.#waiters.delete(done);
        onSettled?.();
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      this.#waiters.add(done);
    });
  }

  /** Wakes every read waiting now. */
  wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}
