/**
 * One HTTP check probe (undici): 2xx is passing, 429 is warning (Consul's "too many requests" rule),
 * anything else — another status, a refused connection, a timeout — is critical.
 *
 * A probe cannot be turned into a proxy (CVE-2022-29153): redirects are followed by hand, only to
 * the same scheme, host and port and at most {@link MAX_CHECK_REDIRECTS} times (none with
 * `DisableRedirects` or `MESHREG_CHECK_REDIRECTS=none`); one deadline covers every hop; at most
 * `maxBodyBytes` of a body are read; every connection goes through the target policy's lookup.
 */
import { Agent, request, type Dispatcher } from 'undici';
import type { Health } from '../../proto/instance.js';
import type { HttpTarget } from './check-definition.js';
import { redirectStep, type CheckNetPolicy, type TargetPolicy } from './check-net-policy.js';
import { OPEN_NET_POLICY } from './check-net-policy.js';

export interface ProbeResult {
  readonly status: Health;
  readonly output: string;
}

/** Dispatchers per target policy: verifying TLS or not, each resolving through the policy's lookup. */
const DISPATCHERS = new WeakMap<TargetPolicy, { secure: Agent; insecure: Agent }>();
function dispatcherFor(t: HttpTarget, policy: TargetPolicy): Dispatcher {
  let d = DISPATCHERS.get(policy);
  if (d === undefined) {
    d = {
      secure: new Agent({ connect: { lookup: policy.lookup } }),
      insecure: new Agent({ connect: { lookup: policy.lookup, rejectUnauthorized: false } }),
    };
    DISPATCHERS.set(policy, d);
  }
  return t.tlsSkipVerify ? d.insecure : d.secure;
}

const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

export async function probeHttp(
  t: HttpTarget,
  timeoutMs: number,
  outputMaxSize: number,
  net: CheckNetPolicy = OPEN_NET_POLICY,
): Promise<ProbeResult> {
  const headers: Record<string, string> = { 'user-agent': 'meshreg-health-check' };
  for (const [k, v] of Object.entries(t.headers)) headers[k] = v.join(', ');
  const signal = AbortSignal.timeout(timeoutMs);
  const mode = t.disableRedirects ? 'none' : net.redirects;
  let url = new URL(t.url);
  let method = t.method;
  let body: string | null = t.body === '' ? null : t.body;
  try {
    for (let followed = 0; ; followed++) {
      const literal = net.targets.literalRefusal(url.hostname);
      if (literal !== undefined) return critical(t, `connection refused by policy: ${literal}`);
      const res = await request(url, {
        method: method as 'GET',
        headers,
        body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal,
        // A fresh connection per probe, as Consul's checks do (no keep-alive): each probe tests
        // connecting, and each connection goes through the policy's lookup again.
        reset: true,
        dispatcher: dispatcherFor(t, net.targets),
      });
      const location = res.headers['location'];
      if (REDIRECT_STATUSES.has(res.statusCode) && typeof location === 'string') {
        await res.body.dump({ limit: net.maxBodyBytes }).catch(() => undefined);
        const step = redirectStep(url, location, mode, followed);
        if ('stop' in step) return critical(t, `${res.statusCode}: ${step.stop}`);
        // As Go's client (Consul's) does: 303, and 301/302 after a POST, continue as a GET without a body.
        if (
          res.statusCode === 303 ||
          ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')
        ) {
          method = 'GET';
          body = null;
        }
        url = step.follow;
        continue;
      }
      const text = (await readCapped(res.body, net.maxBodyBytes)).slice(0, outputMaxSize);
      const line = `HTTP ${t.method} ${t.url}: ${res.statusCode} Output: ${text}`;
      return { status: verdict(res.statusCode), output: line };
    }
  } catch (err) {
    const reason =
      err instanceof Error
        ? err.name === 'TimeoutError' || err.name === 'AbortError'
          ? `timed out after ${timeoutMs} ms`
          : ((err as Error & { cause?: Error }).cause?.message ?? '') || err.message
        : String(err);
    return critical(t, reason);
  }
}

function verdict(status: number): Health {
  if (status >= 200 && status < 300) return 'passing';
  return status === 429 ? 'warning' : 'critical';
}

function critical(t: HttpTarget, reason: string): ProbeResult {
  return { status: 'critical', output: `HTTP ${t.method} ${t.url}: ${reason}` };
}

/** The body's first `maxBytes` as text; the rest is not read (the connection is dropped). */
async function readCapped(body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= maxBytes) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8');
}
