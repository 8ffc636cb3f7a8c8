/**
 * The agent's registrations on disk, as a {@link StateLog}: one entry per service record
 * (`s/<id>`), one per pending removal (`t/<id>`) and one for the node-level checks (`node`). A
 * registration appends its record only; registrations that arrive together share one append and
 * one fsync, and the HTTP answer waits for it (the durability window is zero: a 200 is on disk).
 *
 * A state written by an older agent as one JSON file is read once, then replaced by the log.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../proto/runtime/log.js';
import { isRecord, setOwn } from '../../proto/validate.js';
import { decodeLocalState, type LocalServices, type PersistedState } from './local-services.js';
import { readJsonFile } from './state-file.js';
import { StateLog, loadStateLog } from './state-log.js';

/** The log's file in the data folder. */
export const LOCAL_LOG_FILE = 'local-services.jsonl';
/** The whole-state file of agents before the log. */
export const LEGACY_STATE_FILE = 'local-services.json';

const NODE_KEY = 'node';

type NodePart = Pick<PersistedState, 'nodeChecks' | 'checkStatus'>;

export class LocalStore {
  readonly #log: StateLog;
  readonly #dir: string;
  readonly #local: LocalServices;
  readonly #nodePart: () => NodePart;
  readonly #logger: Logger;

  constructor(dir: string, local: LocalServices, nodePart: () => NodePart, logger: Logger) {
    this.#dir = dir;
    this.#local = local;
    this.#nodePart = nodePart;
    this.#logger = logger;
    this.#log = new StateLog(path.join(dir, LOCAL_LOG_FILE), {
      entries: () => this.#entries(),
      onError: (err) => {
        logger.error('could not persist local registrations', { err });
      },
    });
    local.onChange((c) => {
      if (c.kind === 'upsert') {
        this.#log.put(`s/${c.record.def.id}`, c.record);
        return;
      }
      // A rename emits a removal of the old name before the new record: the record's put follows.
      this.#log.put(`s/${c.tombstone.id}`, undefined);
      this.#log.put(`t/${c.tombstone.id}`, c.tombstone);
    });
  }

  /** Resolves once every change made so far is on disk. */
  flush(): Promise<void> {
    return this.#log.flush();
  }

  /** Records the node-level checks (after a check route changed them) and flushes. */
  saveNodeChecks(): Promise<void> {
    this.#log.put(NODE_KEY, this.#nodePart());
    return this.#log.flush();
  }

  async close(): Promise<void> {
    this.#log.put(NODE_KEY, this.#nodePart());
    await this.#log.close();
  }

  /**
   * Reads the persisted state (the log, else an older agent's file), then rewrites the log from
   * what `apply` restored, so it starts compact and without a torn tail. Problems are logged; the
   * agent starts with whatever decoded.
   */
  async restore(apply: (state: PersistedState) => void): Promise<void> {
    const raw = await this.#readRaw();
    if (raw !== undefined) {
      const decoded = decodeLocalState(raw);
      if (decoded === undefined) {
        this.#logger.error('local state has an unexpected shape; ignoring it', { dir: this.#dir });
      } else {
        for (const reason of decoded.skipped)
          this.#logger.error('skipped an invalid record of the local state', { reason });
        apply(decoded.state);
      }
    }
    await this.#log.compact();
    await fs.rm(path.join(this.#dir, LEGACY_STATE_FILE), { force: true });
  }

  async #readRaw(): Promise<unknown> {
    const file = path.join(this.#dir, LOCAL_LOG_FILE);
    const r = await loadStateLog(file);
    if (r.kind === 'ok') {
      if (r.tornTail) this.#logger.warn('ignored a local state write cut short by a crash', { file });
      if (r.badLines > 0)
        this.#logger.error('skipped damaged lines of the local state log; a copy was set aside', {
          file,
          lines: r.badLines,
          movedTo: r.movedTo,
        });
      return fromEntries(r.entries);
    }
    if (r.kind === 'unreadable') {
      this.#logger.error('local state log unreadable; starting empty', { file, reason: r.reason });
      return undefined;
    }
    const legacy = path.join(this.#dir, LEGACY_STATE_FILE);
    const old = await readJsonFile(legacy);
    if (old.kind === 'corrupt') {
      this.#logger.error('local state file was unreadable; set aside, starting empty', {
        file: legacy,
        movedTo: old.movedTo,
        reason: old.reason,
      });
    }
    return old.kind === 'ok' ? old.value : undefined;
  }

  *#entries(): Iterable<readonly [string, unknown]> {
    for (const r of this.#local.list()) yield [`s/${r.def.id}`, r];
    for (const t of this.#local.tombstones()) yield [`t/${t.id}`, t];
    yield [NODE_KEY, this.#nodePart()];
  }
}

/**
 * The persisted-state shape of a replayed log. A record and a removal of the same ID keep the
 * newer (a registration's version is above any earlier removal's); service check statuses come
 * from the records' own checks, node-level ones from the node entry.
 */
function fromEntries(entries: ReadonlyMap<string, unknown>): unknown {
  const services = new Map<string, unknown>();
  const tombstones = new Map<string, unknown>();
  for (const [key, value] of entries) {
    if (key.startsWith('s/')) services.set(key.slice(2), value);
    else if (key.startsWith('t/')) tombstones.set(key.slice(2), value);
  }
  const checkStatus: Record<string, unknown> = {};
  for (const [id, t] of tombstones) {
    const s = services.get(id);
    if (s !== undefined && versionOf(s) >= versionOf(t)) tombstones.delete(id);
  }
  for (const s of services.values()) {
    const checks = isRecord(s) && Array.isArray(s['checks']) ? (s['checks'] as unknown[]) : [];
    for (const c of checks) if (isRecord(c) && typeof c['id'] === 'string') setOwn(checkStatus, c['id'], c);
  }
  const node = entries.get(NODE_KEY);
  const nodeChecks = isRecord(node) && Array.isArray(node['nodeChecks']) ? node['nodeChecks'] : [];
  if (isRecord(node) && isRecord(node['checkStatus'])) Object.assign(checkStatus, node['checkStatus']);
  return { services: [...services.values()], tombstones: [...tombstones.values()], nodeChecks, checkStatus };
}

function versionOf(v: unknown): number {
  return isRecord(v) && typeof v['version'] === 'number' ? v['version'] : 0;
}
