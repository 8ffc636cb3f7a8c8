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
  let hop: Hop = { url: new URL(t.url), method: t.method, body: t.body === '' ? null : t.body };
  try {
    for (let followed = 0; ; followed++) {
      const literal = net.targets.literalRefusal(hop.url.hostname);
      if (literal !== undefined) return critical(t, `connection refused by policy: ${literal}`);
      const res = await request(hop.url, {
        method: hop.method as 'GET',
        headers,
        body: hop.body,
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
        const step = redirectStep(hop.url, location, mode, followed);
        if ('stop' in step) return critical(t, `${res.statusCode}: ${step.stop}`);
        hop = nextHop(hop, res.statusCode, step.follow);
        continue;
      }
      const text = (await readCapped(res.body, net.maxBodyBytes)).slice(0, outputMaxSize);
      const line = `HTTP ${t.method} ${t.url}: ${res.statusCode} Output: ${text}`;
      return { status: verdict(res.statusCode), output: line };
    }
  } catch (err) {
    return critical(t, failureReason(err, timeoutMs));
  }
}

/** One request of a probe: the first, or one after a followed redirect. */
interface Hop {
  readonly url: URL;
  readonly method: string;
  readonly body: string | null;
}

/** As Go's client (Consul's) does: after 303, and 301/302 to a POST, continue as a GET without a body. */
function nextHop(hop: Hop, status: number, url: URL): Hop {
  const toGet = status === 303 || ((status === 301 || status === 302) && hop.method === 'POST');
  return toGet ? { url, method: 'GET', body: null } : { ...hop, url };
}

function failureReason(err: unknown, timeoutMs: number): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return `timed out after ${timeoutMs} ms`;
  // undici wraps the connect error (a refused lookup among them): its cause says what happened.
  const cause = (err as Error & { cause?: unknown }).cause;
  return cause instanceof Error && cause.message !== '' ? cause.message : err.message;
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
