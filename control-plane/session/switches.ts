/**
 * The operator switches as one session applies them: the state meta pushed last, and the questions
 * the session asks of it for each connection, publish and subscribe.
 */
import { NO_SWITCHES, type Switches } from '../../proto/switches.js';

/** What a switch entry is matched against: the connection's remote IP and its agent's node name. */
export interface ClientIdentity {
  readonly address: string;
  readonly nodeName: string | undefined;
}

/** What changed between two states, for the session to act on. */
export interface SwitchDelta {
  readonly pushStoppedChanged: boolean;
  readonly pushAllowChanged: boolean;
  /** Client-off entries that are new in this state. */
  readonly newlyOff: ReadonlySet<string>;
}

export class SessionSwitches {
  #state: Switches = NO_SWITCHES;
  #clientOff = new Set<string>();
  #pushAllow = new Set<string>();
  #publishBlack = new Set<string>();
  #subscribeBlack = new Set<string>();

  get state(): Switches {
    return this.#state;
  }

  /** Adopts a newer state; undefined when `next` is not newer than what is held. */
  apply(next: Switches): SwitchDelta | undefined {
    if (next.version <= this.#state.version) return undefined;
    const prev = this.#state;
    const newlyOff = new Set(next.clientOff.filter((c) => !this.#clientOff.has(c)));
    this.#state = next;
    this.#clientOff = new Set(next.clientOff);
    this.#pushAllow = new Set(next.pushAllow);
    this.#publishBlack = new Set(next.publishBlacklist);
    this.#subscribeBlack = new Set(next.subscribeBlacklist);
    return {
      pushStoppedChanged: prev.pushStopped !== next.pushStopped,
      pushAllowChanged: prev.pushAllow.join('\n') !== next.pushAllow.join('\n'),
      newlyOff,
    };
  }

  isOff(c: ClientIdentity, among: ReadonlySet<string> = this.#clientOff): boolean {
    return among.has(c.address) || (c.nodeName !== undefined && among.has(c.nodeName));
  }

  /** Whether pushes may go to this client now. */
  mayPush(c: ClientIdentity): boolean {
    return (
      !this.#state.pushStopped || this.#pushAllow.has(c.address) || this.#pushAllow.has(c.nodeName ?? '')
    );
  }

  publishRefused(service: string): boolean {
    return this.#publishBlack.has(service);
  }

  subscribeRefused(service: string): boolean {
    return this.#subscribeBlack.has(service);
  }
}
