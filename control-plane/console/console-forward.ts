/**
 * The console on another port (the agent's, in `meshreg dev`): its pages served from this process's
 * assets, and its admin calls (`/admin/...`, the event stream included) passed to meta's HTTP port
 * as they are, bearer token included, answers streamed back. Only callers that could reach meta's
 * admin API themselves are passed on: loopback ones, or any when `remote` (`MESHREG_ADMIN_REMOTE`).
 */
import http from 'node:http';
import { MeshregError } from '../../proto/errors.js';
import { parseTarget, sendError } from '../../proto/runtime/http-edge.js';
import { consoleAssets, isLoopback } from './console-assets.js';

/** Headers passed to meta (nothing that would change how meta sees the caller). */
const PASSED = [
  'authorization',
  'content-type',
  'content-length',
  'accept',
  'if-none-match',
  'last-event-id',
];

/** Serves `/ui/` and passes `/admin/...` to meta at `metaHttp` (`http://host:port`). */
export function consoleForwarder(
  metaHttp: () => string,
  remote: boolean,
): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  const assets = consoleAssets(remote);
  return (req, res) => {
    if (assets(req, res)) return true;
    const target = parseTarget(req.url);
    if (target instanceof MeshregError || !(target.path === '/admin' || target.path.startsWith('/admin/')))
      return false;
    if (!remote && !isLoopback(req.socket.remoteAddress)) {
      sendError(res, new MeshregError('forbidden', 'admin requests are accepted from loopback only'));
      return true;
    }
    forward(metaHttp(), req, res);
    return true;
  };
}

function forward(base: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  const headers: Record<string, string> = {};
  for (const h of PASSED) {
    const v = req.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  const out = http.request(`${base}${req.url ?? '/'}`, { method: req.method ?? 'GET', headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  out.on('error', () => {
    if (!res.headersSent) sendError(res, new MeshregError('unavailable', 'meta did not answer'));
    else res.destroy();
  });
  res.once('close', () => {
    out.destroy();
  });
  req.pipe(out);
}
