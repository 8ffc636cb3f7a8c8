/**
 * Crash-safe JSON files: write to a temp file, fsync it, rename over the target, fsync the folder.
 * A file that cannot be parsed is moved aside (never deleted) so the agent can start anyway.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/** Writes `value` as JSON, atomically and durably. */
export function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  return writeTextAtomic(file, JSON.stringify(value));
}

/** Replaces `file` with `text`: a crash leaves the old content or the new, never a mix. */
export async function writeTextAtomic(file: string, text: string): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fs.open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
  // The rename is durable only once the directory entry is on disk.
  const dirHandle = await fs.open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

export type ReadResult =
  | { readonly kind: 'ok'; readonly value: unknown }
  | { readonly kind: 'missing' }
  | { readonly kind: 'corrupt'; readonly movedTo: string; readonly reason: string };

/** A file's text, `missing` when it does not exist, or why it could not be read. */
export async function readText(
  file: string,
): Promise<{ kind: 'ok'; text: string } | { kind: 'missing' } | { kind: 'unreadable'; reason: string }> {
  try {
    return { kind: 'ok', text: await fs.readFile(file, 'utf8') };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    return { kind: 'unreadable', reason: (err as Error).message };
  }
}

/** Reads a JSON file; a corrupt one is renamed to `<file>.corrupt-<time>` and reported. */
export async function readJsonFile(file: string): Promise<ReadResult> {
  const read = await readText(file);
  if (read.kind === 'missing') return read;
  if (read.kind === 'unreadable') return setAside(file, `unreadable: ${read.reason}`);
  const text = read.text;
  try {
    return { kind: 'ok', value: JSON.parse(text) as unknown };
  } catch (err) {
    return setAside(file, `not valid JSON: ${(err as Error).message}`);
  }
}

async function setAside(file: string, reason: string): Promise<ReadResult> {
  const movedTo = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  try {
    await fs.rename(file, movedTo);
  } catch {
    // If even the rename fails the file stays; the agent still starts with an empty state.
  }
  return { kind: 'corrupt', movedTo, reason };
}
