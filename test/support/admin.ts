/** Helpers for the admin API and the Prometheus text of `/metrics`. */
import { http, type JsonResponse } from './http.js';

/** `ws://host:port/v1/...` → `http://host:port`. */
export const httpBase = (linkUrl: string): string =>
  linkUrl.replace('ws://', 'http://').replace(/\/v1\/.*$/, '');

/** An admin request with a bearer token. */
export function admin(
  method: 'GET' | 'POST',
  url: string,
  token: string,
  body?: unknown,
): Promise<JsonResponse> {
  return http(method, url, body, { authorization: `Bearer ${token}`, 'content-type': 'application/json' });
}

/** One sample of a scrape: its labels and value. */
export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses Prometheus text into samples by metric name. */
export function parseMetrics(text: string): Map<string, Sample[]> {
  const out = new Map<string, Sample[]>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = l[2] ?? '';
    const list = out.get(m[1] ?? '') ?? [];
    list.push({ labels, value: Number(m[3]) });
    out.set(m[1] ?? '', list);
  }
  return out;
}

/** The value of `name` whose labels include `match`; undefined when absent. */
export function value(
  samples: Map<string, Sample[]>,
  name: string,
  match: Readonly<Record<string, string>> = {},
): number | undefined {
  return samples.get(name)?.find((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v))?.value;
}

/** Scrapes a `/metrics` URL. */
export async function scrape(url: string): Promise<Map<string, Sample[]>> {
  const r = await http('GET', url);
  if (r.status !== 200) throw new Error(`scrape ${url}: ${r.status}`);
  return parseMetrics(r.text);
}
