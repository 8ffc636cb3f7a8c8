/**
 * Build step of the web console: copies its static files (HTML, CSS) next to the modules tsc compiled
 * into `dist/control-plane/console/ui/`, so the served folder is complete. Runs from
 * `dist/scripts/`, reads only the repository's files and needs no network.
 */
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SOURCE = path.join(ROOT, 'control-plane/console/ui');
const TARGET = path.join(ROOT, 'dist/control-plane/console/ui');
/** The static kinds shipped as they are; the TypeScript modules come from tsc. */
const COPIED = new Set(['.html', '.css', '.svg']);

async function main(): Promise<void> {
  await mkdir(TARGET, { recursive: true });
  const names = (await readdir(SOURCE)).filter((n) => COPIED.has(path.extname(n))).sort();
  if (!names.includes('index.html')) throw new Error(`console assets: no index.html in ${SOURCE}`);
  for (const n of names) await copyFile(path.join(SOURCE, n), path.join(TARGET, n));
}

await main();
