/**
 * Build step of the web console: copies its static files (HTML, CSS) next to the modules tsc compiled
 * into `dist/control-plane/console/ui/`, so the served folder is complete. Runs from
 * `dist/scripts/`, reads only the repository's files and needs no network.
 */
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SOURCE = path.join(ROOT, 'control-plane/console/ui');
const TARGET = path.join(ROOT, 'dist/control-plane/console/ui');
/** The static kinds shipped as they are; the TypeScript modules come from tsc. */
const COPIED = new Set(['.html', '.css', '.svg']);

/**
 * The page preloads every module (one round of requests instead of one per import level): the list
 * in index.html must name exactly the modules there are, or a new page would load late.
 */
function checkPreloads(html: string, sources: readonly string[]): void {
  const listed = [...html.matchAll(/rel="modulepreload" href="\/ui\/([\w-]+)\.js"/g)].map((m) => m[1] ?? '');
  const modules = sources
    .filter((n) => n.endsWith('.ts') && !n.endsWith('.d.ts') && n !== 'main.ts')
    .map((n) => n.slice(0, -3));
  const missing = modules.filter((m) => !listed.includes(m));
  const extra = listed.filter((m) => !modules.includes(m));
  if (missing.length > 0 || extra.length > 0)
    throw new Error(
      `console assets: index.html modulepreload missing [${missing.join(', ')}], extra [${extra.join(', ')}]`,
    );
}

async function main(): Promise<void> {
  await mkdir(TARGET, { recursive: true });
  const all = await readdir(SOURCE);
  const names = all.filter((n) => COPIED.has(path.extname(n))).sort();
  if (!names.includes('index.html')) throw new Error(`console assets: no index.html in ${SOURCE}`);
  checkPreloads(await readFile(path.join(SOURCE, 'index.html'), 'utf8'), all);
  for (const n of names) await copyFile(path.join(SOURCE, n), path.join(TARGET, n));
}

await main();
