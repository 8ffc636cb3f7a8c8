/**
 * One HTTP check probe (undici): 2xx is passing, 429 is warning (Consul's "too many requests" rule),
 * anything else — another status, a refused connection, a timeout — is critical.
 */
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import type { Health } from '../../proto/instance.js';
import type { HttpTarget } from './check-definition.js';

export interface ProbeResult {
  readonly status: Health;
  readonly output: string;
}

// Four dispatchers: verifying TLS or not, following redirects (Consul's default, up to 10) or not.
const secure = new Agent();
const insecure = new Agent({ connect: { rejectUnauthorized: false } });
const redirects = interceptors.redirect({ maxRedirections: 10 });
function dispatcherFor(t: HttpTarget): Dispatcher {
  const base = t.tlsSkipVerify ? insecure : secure;
  return t.disableRedirects ? base : base.compose(redirects);
}

export async function probeHttp(
  t: HttpTarget,
  timeoutMs: number,
  outputMaxSize: number,
): Promise<ProbeResult> {
  const headers: Record<string, string> = { 'user-agent': 'meshreg-health-check' };
  for (const [k, v] of Object.entries(t.headers)) headers[k] = v.join(', ');
  try {
    const res = await request(t.url, {
      method: t.method as 'GET',
      headers,
      body: t.body === '' ? null : t.body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      dispatcher: dispatcherFor(t),
    });
    const text = (await res.body.text()).slice(0, outputMaxSize);
    const line = `HTTP ${t.method} ${t.url}: ${res.statusCode} Output: ${text}`;
    if (res.statusCode >= 200 && res.statusCode < 300) return { status: 'passing', output: line };
    if (res.statusCode === 429) return { status: 'warning', output: line };
    return { status: 'critical', output: line };
  } catch (err) {
    const reason =
      err instanceof Error
        ? err.name === 'TimeoutError' || err.name === 'AbortError'
          ? `timed out after ${timeoutMs} ms`
          : err.message
        : String(err);
    return { status: 'critical', output: `HTTP ${t.method} ${t.url}: ${reason}` };
  }
}
