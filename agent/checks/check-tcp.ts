/**
 * One TCP check probe: a connection within the timeout is passing, anything else critical. The
 * connection goes through the target policy (a literal address is checked first, a name through
 * the policy's lookup, so the address actually dialled is the one checked).
 */
import net from 'node:net';
import type { ProbeResult } from './check-http.js';
import { OPEN_NET_POLICY, type TargetPolicy } from './check-net-policy.js';

export function probeTcp(
  target: string,
  timeoutMs: number,
  policy: TargetPolicy = OPEN_NET_POLICY.targets,
): Promise<ProbeResult> {
  const sep = target.lastIndexOf(':');
  const host = target.slice(0, sep).replace(/^\[(.*)\]$/, '$1');
  const port = Number(target.slice(sep + 1));
  const refused = policy.literalRefusal(host);
  if (refused !== undefined)
    return Promise.resolve({
      status: 'critical',
      output: `TCP connect ${target}: connection refused by policy: ${refused}`,
    });
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, lookup: policy.lookup });
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
