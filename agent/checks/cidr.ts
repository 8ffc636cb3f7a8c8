/**
 * IP addresses and CIDR ranges as 16 bytes: an IPv4 address is held as its IPv4-mapped IPv6 form
 * (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2) and an IPv4 range's prefix is raised by 96, so one
 * comparison serves IPv4, IPv6 and an IPv4 address written as IPv4-mapped IPv6.
 */
import net from 'node:net';

/** A parsed CIDR range: its first 16 bytes and prefix length (0..128). */
export interface Cidr {
  readonly bytes: Uint8Array;
  readonly prefix: number;
  /** As written, for messages. */
  readonly text: string;
}

const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] as const;

/** The 16 bytes of an IPv4 or IPv6 literal (zone index refused), or `undefined` when it is not one. */
export function parseIp(text: string): Uint8Array | undefined {
  const kind = net.isIP(text);
  if (kind === 4) return v4Bytes(text);
  if (kind === 6 && !text.includes('%')) return v6Bytes(text);
  return undefined;
}

function v4Bytes(text: string): Uint8Array {
  const out = new Uint8Array(16);
  out.set(V4_MAPPED_PREFIX);
  text.split('.').forEach((p, i) => {
    out[12 + i] = Number(p);
  });
  return out;
}

/** Bytes of a valid IPv6 literal (net.isIP said so): `::` expanded, a dotted IPv4 tail read. */
function v6Bytes(text: string): Uint8Array {
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const b = v4Bytes(g);
        out.push(((b[12] ?? 0) << 8) | (b[13] ?? 0), ((b[14] ?? 0) << 8) | (b[15] ?? 0));
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const [head = '', tail] = text.split('::');
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** A CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address (`/32` or `/128`), or why it is not one. */
export function parseCidr(text: string): Cidr | string {
  const t = text.trim();
  const slash = t.indexOf('/');
  const addr = slash < 0 ? t : t.slice(0, slash);
  const bytes = parseIp(addr);
  if (bytes === undefined) return `${JSON.stringify(t)} is not an IPv4 or IPv6 address or CIDR`;
  const v4 = net.isIPv4(addr);
  const max = v4 ? 32 : 128;
  const prefixText = slash < 0 ? String(max) : t.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max)
    return `${JSON.stringify(t)}: the prefix length must be 0..${String(max)}`;
  const prefix = Number(prefixText) + (v4 ? 96 : 0);
  return { bytes: masked(bytes, prefix), prefix, text: t };
}

/** `bytes` with every bit after the first `prefix` cleared. */
function masked(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, prefix - 8 * i));
    out[i] = (bytes[i] ?? 0) & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

/** True when `ip` (16 bytes from {@link parseIp}) lies in `range`. */
export function inCidr(ip: Uint8Array, range: Cidr): boolean {
  const m = masked(ip, range.prefix);
  for (let i = 0; i < 16; i++) if (m[i] !== range.bytes[i]) return false;
  return true;
}

/** A comma-separated CIDR list, or every entry that is not a CIDR (at most 256 entries). */
export function parseCidrList(text: string): { ok: true; value: Cidr[] } | { ok: false; errors: string[] } {
  const entries = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (entries.length > 256) return { ok: false, errors: ['at most 256 CIDRs'] };
  const value: Cidr[] = [];
  const errors: string[] = [];
  for (const e of entries) {
    const c = parseCidr(e);
    if (typeof c === 'string') errors.push(c);
    else value.push(c);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value };
}
