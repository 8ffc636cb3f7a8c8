/**
 * The console's pages on a role's port (and the agent's in `meshreg dev`): the static files built
 * into `ui/` next to this module, served at `/ui/` by the safe static handler, to loopback callers
 * only unless the admin API is opened remotely (`MESHREG_ADMIN_REMOTE`), as the admin API is.
 */
import type http from 'node:http';
import { fileURLToPath } from 'node:url';
import { MeshregError } from '../../proto/errors.js';
import { parseTarget, sendError } from '../../proto/runtime/http-edge.js';
import {
  loadStaticFiles,
  resolveStatic,
  sendStatic,
  type StaticFile,
} from '../../proto/runtime/static-files.js';

/** Where the console's pages are served. */
export const CONSOLE_PREFIX = '/ui';

/** The built assets' folder: `ui/` beside the compiled module. */
export const CONSOLE_ASSETS_DIR = fileURLToPath(new URL('./ui/', import.meta.url));

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

/** Read once per folder and process (every role of a process serves the same files). */
const loaded = new Map<string, ReadonlyMap<string, StaticFile>>();

function filesOf(dir: string): ReadonlyMap<string, StaticFile> {
  let files = loaded.get(dir);
  if (files === undefined) {
    files = loadStaticFiles(dir);
    loaded.set(dir, files);
  }
  return files;
}

/** True when `remote` is a loopback address. */
export function isLoopback(remote: string | undefined): boolean {
  return LOOPBACK.test(remote ?? '');
}

/**
 * Serves `/ui` and everything below it; false for other paths. `remote`: also to non-loopback
 * callers. `dir` defaults to {@link CONSOLE_ASSETS_DIR}.
 */
export function consoleAssets(
  remote: boolean,
  dir = CONSOLE_ASSETS_DIR,
): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  const files = filesOf(dir);
  return (req, res) => {
    const target = parseTarget(req.url);
    if (target instanceof MeshregError) return false;
    const answer = resolveStatic(files, CONSOLE_PREFIX, target.path);
    if (answer.kind === 'none') return false;
    if (!remote && !isLoopback(req.socket.remoteAddress)) {
      sendError(
        res,
        new MeshregError('forbidden', 'the console is served to loopback only (MESHREG_ADMIN_REMOTE)'),
      );
      return true;
    }
    sendStatic(req, res, answer);
    return true;
  };
}
