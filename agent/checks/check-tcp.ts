/** One TCP check probe: a connection within the timeout is passing, anything else critical. */
import net from 'node:net';
import type { ProbeResult } from './check-http.js';

export function probeTcp(target: string, timeoutMs: number): Promise<ProbeResult> {
  const sep = target.lastIndexOf(':');
  const host = target.slice(0, sep).replace(/^\[(.*)\]$/, '$1');
  const port = Number(target.slice(sep + 1));
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (r: ProbeResult): void => {
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(timeoutMs, () =>
      done({ status: 'critical', output: `TCP connect ${target}: timed out after ${timeoutMs} ms` }),
    );
    socket.once('connect', () => done({ status: 'passing', output: `TCP connect ${target}: Success` }));
    socket.once('error', (err) =>
      done({ status: 'critical', output: `TCP connect ${target}: ${err.message}` }),
    );
  });
}
