/**
 * Sends a request as exact bytes over a socket — for targets and headers an HTTP client would
 * normalise or refuse (absolute-form targets, backslashes, a spoofed Host) — and parses the answer.
 */
import net from 'node:net';

export interface RawAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly text: string;
  /** The JSON body, or undefined when it is not JSON. */
  readonly body: unknown;
}

/**
 * Sends `METHOD target HTTP/1.1` with `headers` (Host defaults to the base's authority,
 * `Connection: close` is added) and an optional JSON body to `base` (`http://host:port`).
 */
export function rawRequest(
  base: string,
  method: string,
  target: string,
  headers: Readonly<Record<string, string>> = {},
  body?: unknown,
  timeoutMs = 5000,
): Promise<RawAnswer> {
  const url = new URL(base);
  const payload = body === undefined ? '' : JSON.stringify(body);
  const all: Record<string, string> = { host: url.host, ...headers, connection: 'close' };
  if (payload !== '' || method === 'PUT' || method === 'POST')
    all['content-length'] = String(Buffer.byteLength(payload));
  if (payload !== '') all['content-type'] = 'application/json';
  const head = Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port) });
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => {
      socket.destroy(new Error(`no answer to ${method} ${target} within ${timeoutMs} ms`));
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      resolve(parseAnswer(Buffer.concat(chunks).toString('utf8')));
    });
    socket.write(`${method} ${target} HTTP/1.1\r\n${head}\r\n${payload}`);
  });
}

function parseAnswer(raw: string): RawAnswer {
  const split = raw.indexOf('\r\n\r\n');
  const headText = split < 0 ? raw : raw.slice(0, split);
  const text = split < 0 ? '' : raw.slice(split + 4);
  const [statusLine = '', ...lines] = headText.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, text, body };
}
