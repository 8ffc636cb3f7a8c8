/**
 * A data server's catalog (service name → tags of the services it leads): recomputed at most once
 * per debounce interval after changes, versioned by the server's clock, and announced to the
 * sessions that asked for it.
 */
import type { VersionClock } from '../../proto/version.js';
import type { CatalogView } from '../link/data-api.js';

export interface DataCatalogOptions {
  readonly clock: VersionClock;
  /** How long changes are gathered before one recomputation. */
  readonly debounceMs: number;
  /** The catalog as the server holds it now, and whether it is complete. */
  readonly compute: () => { services: Record<string, string[]>; complete: boolean };
  /** Tells interested sessions of a new catalog version. */
  readonly announce: (version: number) => void;
}

export class DataCatalog {
  readonly #opts: DataCatalogOptions;
  #view: CatalogView;
  #json = '{}';
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: DataCatalogOptions) {
    this.#opts = opts;
    this.#view = { version: opts.clock.next(), complete: false, services: {} };
  }

  /** The catalog now: a read between a change and its debounced recomputation sees the change. */
  view(): CatalogView {
    if (this.#timer !== undefined) this.recompute(false);
    return this.#view;
  }

  /** A datum changed: recompute once the debounce interval is over. */
  changed(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.recompute(false);
    }, this.#opts.debounceMs);
    this.#timer.unref();
  }

  /** Recomputes; a new version (announced) when the content or completeness changed, or `force`. */
  recompute(force: boolean): void {
    const { services, complete } = this.#opts.compute();
    const json = JSON.stringify(services);
    if (!force && json === this.#json && this.#view.complete === complete) return;
    this.#json = json;
    this.#view = { version: this.#opts.clock.next(this.#view.version), complete, services };
    this.#opts.announce(this.#view.version);
  }

  close(): void {
    clearTimeout(this.#timer);
  }
}
