/**
 * A safe static-file handler for a single-page app under a fixed prefix (the console at `/ui/`).
 *
 * Every file is read once, at start, from one directory (not its subfolders' parents: only regular
 * files below it, no symbolic links); a request only ever looks its path up in that in-memory table,
 * so nothing of a URL reaches the file system. Answers carry a content type, an ETag (304 on a match),
 * `cache-control` and security headers; `/ui` redirects to `/ui/`; an unknown path below the prefix
 * that does not look like a file gets `index.html` (the app routes it); a missing asset directory
 * answers 503 with a page that says so.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import type http from 'node:http';
import { join } from 'node:path';

/** Content types by extension; other files are not served. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
});

/** Headers on every answer of the handler. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': "default-src 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
});

/** One file held in memory. */
export interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

/** Limits of what is read at start. */
const MAX_FILES = 1000;
const MAX_TOTAL_BYTES = 32 * 1024 * 1024;
const MAX_DEPTH = 6;
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * Reads the allow-list: every regular file below `dir` with a known extension and a plain name,
 * keyed by its URL path relative to `dir` (`index.html`, `pages/overview.js`). Missing dir: empty.
 */
export function loadStaticFiles(dir: string): ReadonlyMap<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  let total = 0;
  const walk = (abs: string, rel: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(abs).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (!SAFE_NAME.test(name) || files.size >= MAX_FILES) continue;
      const path = join(abs, name);
      const st = lstatSync(path, { throwIfNoEntry: false });
      const key = rel === '' ? name : `${rel}/${name}`;
      if (st?.isDirectory() === true && depth < MAX_DEPTH) walk(path, key, depth + 1);
      const type = CONTENT_TYPES[extensionOf(name)];
      if (st?.isFile() !== true || type === undefined || total + st.size > MAX_TOTAL_BYTES) continue;
      const body = readFileSync(path);
      total += body.length;
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
      files.set(key, { body, type, etag });
    }
  };
  walk(dir, '', 0);
  return files;
}

function extensionOf(name: string): string {
  const i = name.lastIndexOf('.');
  return i <= 0 ? '' : name.slice(i).toLowerCase();
}

/** What a request for `path` gets: a file, a redirect, or a status with a short text. */
export type StaticAnswer =
  | { readonly kind: 'file'; readonly key: string; readonly file: StaticFile }
  | { readonly kind: 'redirect'; readonly location: string }
  | { readonly kind: 'status'; readonly status: number; readonly text: string }
  | { readonly kind: 'none' };

/**
 * Resolves a request path (already parsed: dot segments resolved, still percent-encoded) against
 * the table; `none` when the path is not below `prefix`. Pure, so it is tested without sockets.
 */
export function resolveStatic(
  files: ReadonlyMap<string, StaticFile>,
  prefix: string,
  path: string,
): StaticAnswer {
  const base = prefix.replace(/\/$/, '');
  if (path === base) return { kind: 'redirect', location: `${base}/` };
  if (!path.startsWith(`${base}/`)) return { kind: 'none' };
  const index = files.get('index.html');
  if (index === undefined)
    return {
      kind: 'status',
      status: 503,
      text: 'The console assets are not built: run the build that makes them.',
    };
  const rest = path.slice(base.length + 1);
  const exact = files.get(rest);
  if (exact !== undefined) return { kind: 'file', key: rest, file: exact };
  if (rest === '') return { kind: 'file', key: 'index.html', file: index };
  // A missing asset is a 404; any other path is one of the app's own routes.
  if (extensionOf(rest.slice(rest.lastIndexOf('/') + 1)) !== '')
    return { kind: 'status', status: 404, text: 'Not found.' };
  return { kind: 'file', key: 'index.html', file: index };
}

/** Writes `answer` for a GET or HEAD; the ETag is honoured with 304. */
export function sendStatic(req: http.IncomingMessage, res: http.ServerResponse, answer: StaticAnswer): void {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res
      .writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
      .end('Method not allowed.\n');
    return;
  }
  switch (answer.kind) {
    case 'none':
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found.\n');
      return;
    case 'redirect':
      res.writeHead(301, { location: answer.location }).end();
      return;
    case 'status':
      res.writeHead(answer.status, {
        'content-type': 'text/plain; charset=utf-8',
        'cache-control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : `${answer.text}\n`);
      return;
    case 'file': {
      const { file, key } = answer;
      // The page itself is revalidated every time (it names the current assets); assets are cached briefly.
      const cache = key === 'index.html' ? 'no-cache' : 'public, max-age=300';
      const headers = { etag: file.etag, 'cache-control': cache };
      if (req.headers['if-none-match'] === file.etag) {
        res.writeHead(304, headers).end();
        return;
      }
      res.writeHead(200, { ...headers, 'content-type': file.type, 'content-length': file.body.length });
      res.end(req.method === 'HEAD' ? undefined : file.body);
      return;
    }
    default: {
      const never: never = answer;
      throw new Error(`unknown answer ${String(never)}`);
    }
  }
}
