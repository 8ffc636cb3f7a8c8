/**
 * A keyed append log on disk: each change is one JSON line `[key, value]` (or `[key]` for a removal)
 * appended to the file, so the cost of a change is the size of that change, not of the whole state.
 *
 * Group commit: every change made while a write is in flight (or in the same event-loop turn) goes
 * to disk in the next single append, followed by one `fdatasync` when the log is durable.
 * {@link StateLog.flush} resolves once everything put before it is on disk.
 *
 * Compaction: once the file has grown past twice its size at the last compaction (and past a
 * floor), the next write rewrites it from the owner's current state instead — temp file, fsync,
 * rename, fsync of the folder — so a crash leaves either the old log or the new one, never half.
 *
 * Crash safety: a write torn by a crash leaves a last line without its newline; {@link loadStateLog}
 * ignores it. A complete line that does not decode is corruption: the good lines are kept, the file
 * is copied aside (`<file>.corrupt-<time>`) and reported.
 */
import fs from 'node:fs/promises';
import { readText, writeTextAtomic } from './state-file.js';

/** Where a log starts compacting, whatever the size of the state. */
export const DEFAULT_COMPACT_MIN_BYTES = 1024 * 1024;

export interface StateLogOptions {
  /** Every live entry, for a compaction: the owner's current state, not the log's replay. */
  readonly entries: () => Iterable<readonly [string, unknown]>;
  readonly onError: (err: unknown) => void;
  /** Whether each append is followed by `fdatasync` (a cache may skip it). Default true. */
  readonly durable?: boolean;
  /** Do not compact a log smaller than this. */
  readonly compactMinBytes?: number;
}

export type StateLogLoad =
  | { readonly kind: 'missing' }
  | {
      readonly kind: 'ok';
      readonly entries: Map<string, unknown>;
      /** A last line cut short by a crash was ignored. */
      readonly tornTail: boolean;
      /** Complete lines that did not decode (skipped); when any, the file was copied to `movedTo`. */
      readonly badLines: number;
      readonly movedTo?: string;
    }
  | { readonly kind: 'unreadable'; readonly reason: string };

export class StateLog {
  readonly #file: string;
  readonly #opts: StateLogOptions;
  #pending: string[] = [];
  /** The write that will carry what is pending now; undefined once it started. */
  #next: Promise<void> | undefined;
  #tail: Promise<void> = Promise.resolve();
  #handle: fs.FileHandle | undefined;
  #bytes = 0;
  #compactedBytes = 0;
  #compactWanted = false;

  constructor(file: string, opts: StateLogOptions) {
    this.#file = file;
    this.#opts = opts;
  }

  /** Records `key` → `value` (`undefined` removes the key) and schedules a write. */
  put(key: string, value: unknown): void {
    this.#pending.push(JSON.stringify(value === undefined ? [key] : [key, value]));
    void this.#request();
  }

  /** Resolves once everything put before this call is on disk (or its write failed and was reported). */
  flush(): Promise<void> {
    return this.#next ?? this.#tail;
  }

  /** Rewrites the log from {@link StateLogOptions.entries} (after a restore, or on demand). */
  compact(): Promise<void> {
    this.#compactWanted = true;
    return this.#request();
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    await this.flush();
    const h = this.#handle;
    this.#handle = undefined;
    await h?.close();
  }

  #request(): Promise<void> {
    if (this.#next !== undefined) return this.#next;
    const p = this.#tail.then(() => {
      // From here on, new puts need a later write.
      this.#next = undefined;
      return this.#write();
    });
    this.#next = p;
    this.#tail = p;
    return p;
  }

  async #write(): Promise<void> {
    const lines = this.#pending;
    this.#pending = [];
    try {
      const text = lines.length === 0 ? '' : lines.join('\n') + '\n';
      const floor = this.#opts.compactMinBytes ?? DEFAULT_COMPACT_MIN_BYTES;
      const grown = this.#bytes + text.length > Math.max(floor, 2 * this.#compactedBytes);
      if (this.#compactWanted || grown) {
        this.#compactWanted = false;
        // The entries are the current state: the pending lines are already part of it.
        await this.#rewrite();
        return;
      }
      if (text === '') return;
      const h = this.#handle ?? (this.#handle = await fs.open(this.#file, 'a', 0o600));
      await h.write(text);
      this.#bytes += Buffer.byteLength(text);
      if (this.#opts.durable !== false) await h.datasync();
    } catch (err) {
      this.#opts.onError(err);
    }
  }

  async #rewrite(): Promise<void> {
    const parts: string[] = [];
    for (const [key, value] of this.#opts.entries()) parts.push(JSON.stringify([key, value]), '\n');
    const text = parts.join('');
    const old = this.#handle;
    this.#handle = undefined;
    await old?.close();
    await writeTextAtomic(this.#file, text);
    this.#bytes = Buffer.byteLength(text);
    this.#compactedBytes = this.#bytes;
  }
}

/** Replays a log into its live entries; see the module comment for torn and corrupt lines. */
export async function loadStateLog(file: string): Promise<StateLogLoad> {
  const read = await readText(file);
  if (read.kind !== 'ok') return read;
  const lines = read.text.split('\n');
  // Everything after the last newline is a write the crash cut short ('' when the file ends cleanly).
  const tornTail = lines.pop() !== '';
  const entries = new Map<string, unknown>();
  let badLines = 0;
  for (const line of lines) {
    const entry = parseLine(line);
    if (entry === undefined) badLines++;
    else if (entry.length === 1) entries.delete(entry[0]);
    else entries.set(entry[0], entry[1]);
  }
  if (badLines === 0) return { kind: 'ok', entries, tornTail, badLines };
  const movedTo = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  try {
    await fs.copyFile(file, movedTo);
  } catch {
    // The copy is a courtesy for a post-mortem; the good lines are loaded either way.
  }
  return { kind: 'ok', entries, tornTail, badLines, movedTo };
}

function parseLine(line: string): readonly [string] | readonly [string, unknown] | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!Array.isArray(raw) || typeof raw[0] !== 'string') return undefined;
  if (raw.length === 1) return [raw[0]];
  return raw.length === 2 ? [raw[0], raw[1] as unknown] : undefined;
}
