/**
 * The cluster-wide operator switches as meta keeps them: each change makes a new immutable state
 * with a larger version, handed to a listener (meta pushes it to every session).
 */
import type { ListEdit, PushSwitch, Switches } from '../../proto/switches.js';
import { NO_SWITCHES } from '../../proto/switches.js';

export type SwitchList = 'clientOff' | 'publishBlacklist' | 'subscribeBlacklist';

export class SwitchBoard {
  #state: Switches = NO_SWITCHES;
  readonly #onChange: (s: Switches) => void;

  constructor(onChange: (s: Switches) => void) {
    this.#onChange = onChange;
  }

  get state(): Switches {
    return this.#state;
  }

  /** Stops or resumes pushes; `allow` (when given) replaces the list still served while stopped. */
  setPush(p: PushSwitch): Switches {
    return this.#set({
      pushStopped: p.stopped,
      pushAllow:
        p.allow !== undefined ? [...new Set(p.allow)].sort() : p.stopped ? this.#state.pushAllow : [],
    });
  }

  /** Adds and removes entries of one list switch. */
  edit(list: SwitchList, e: ListEdit): Switches {
    const next = new Set(this.#state[list]);
    for (const x of e.add) next.add(x);
    for (const x of e.remove) next.delete(x);
    return this.#set({ [list]: [...next].sort() });
  }

  #set(change: Partial<Omit<Switches, 'version'>>): Switches {
    // Wall-clock based, so a restarted meta's first state is still newer than what sessions hold.
    const version = Math.max(this.#state.version + 1, Date.now());
    this.#state = Object.freeze({ ...this.#state, ...change, version });
    this.#onChange(this.#state);
    return this.#state;
  }
}
