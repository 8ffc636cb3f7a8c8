/**
 * The federation link: a session of one data center (the importer) → a session of a peer data center
 * (the exporter), on the exporter's session port. The importer's hello has role `federation`, its own
 * data center's name as `id`, and the pair's token; the exporter refuses a peer it does not know, a
 * wrong token (4001), or a name equal to its own (4015).
 *
 * The exporter then sends the importer:
 * - `exports`: the services it exports to the importer (at once, and after every change of that list);
 * - `datum`: a targeted notice, the whole datum of an exported service (its first one on a link);
 * - `delta`: a targeted notice of what changed since the version the exporter last sent on this link
 *   (`base`), when that is smaller than the whole datum. The importer applies it only to a copy of
 *   exactly `base`; otherwise it fetches the datum (its copy may have moved on through a digest).
 *
 * The importer calls `digest` (every exported service with its version) on connect and then
 * periodically, and `fetch` for every service whose version differs from its copy: what repairs a
 * notice that was lost. Versions are the exporter's own (one sequence per data center). The exporter
 * never sends what it imported from elsewhere: only its local datums (no relay, invariant 8).
 */
import { decodeDatumView, type DatumView, KEY_RULES } from './cluster-records.js';
import { FEDERATION_LIMITS } from './federation.js';
import { readInstance, SERVICE_NAME_PATTERN, type Instance } from './instance.js';
import { MAX_PUSH_INSTANCES } from './session-frames.js';
import { decodeNoParams, rpcEvent, rpcMethod, type Decoder } from './rpc.js';
import {
  at,
  decodeField,
  decodeObject,
  readArray,
  readBool,
  readInt,
  readObject,
  readString,
} from './validate.js';

export const FEDERATION_LINK_PATH = '/v1/federation-link';

export interface DigestAnswer {
  /** Every service exported to the caller → its datum version here. */
  readonly services: Readonly<Record<string, number>>;
}

export interface DatumNotice {
  readonly datum: DatumView;
  /** The exporter's wall clock when sent (the importer's lag figure). */
  readonly sentAt: number;
}

/** What changed in one exported service from version `base` to `version` (see the file comment). */
export interface DatumDelta {
  readonly key: string;
  readonly base: number;
  readonly version: number;
  readonly complete: boolean;
  /** Instances added or changed since `base`. */
  readonly upserts: readonly Instance[];
  /** Registration IDs (`nodeId/id`) removed since `base`. */
  readonly removed: readonly string[];
}

export interface DeltaNotice {
  readonly delta: DatumDelta;
  /** The exporter's wall clock when sent. */
  readonly sentAt: number;
}

export interface ExportsEvent {
  readonly services: readonly string[];
}

const decodeDigest: Decoder<DigestAnswer> = (raw) =>
  decodeObject(raw, (issues, o) => {
    const so = readObject(issues, o['services'], 'services');
    if (so === undefined) return undefined;
    const entries = Object.entries(so);
    if (entries.length > FEDERATION_LIMITS.maxExports) {
      issues.add('services', `must hold at most ${FEDERATION_LIMITS.maxExports} services`);
      return undefined;
    }
    const services: Record<string, number> = {};
    for (const [k, v] of entries) {
      if (!SERVICE_NAME_PATTERN.test(k) || k.length > 256) {
        issues.add(at('services', k), 'must be a service name');
        continue;
      }
      const n = readInt(issues, v, at('services', k), { required: true, min: 0 });
      if (n !== undefined) services[k] = n;
    }
    return { services };
  });

const decodeNotice: Decoder<DatumNotice> = (raw) =>
  decodeObject(raw, (issues, o) => {
    const d = decodeDatumView(o['datum']);
    if (!d.ok) {
      for (const e of d.errors) issues.add(at('datum', e.path), e.message);
      return undefined;
    }
    const sentAt = readInt(issues, o['sentAt'], 'sentAt', { required: true, min: 0 });
    return sentAt === undefined ? undefined : { datum: d.value, sentAt };
  });

const decodeDeltaNotice: Decoder<DeltaNotice> = (raw) =>
  decodeObject(raw, (issues, o) => {
    const d = readObject(issues, o['delta'], 'delta');
    const sentAt = readInt(issues, o['sentAt'], 'sentAt', { required: true, min: 0 });
    if (d === undefined) return undefined;
    const key = readString(issues, d['key'], 'delta.key', KEY_RULES);
    const base = readInt(issues, d['base'], 'delta.base', { required: true, min: 1 });
    const version = readInt(issues, d['version'], 'delta.version', { required: true, min: 1 });
    const complete = readBool(issues, d['complete'], 'delta.complete', true);
    const upserts = readArray(issues, d['upserts'], 'delta.upserts', (i, p) => readInstance(issues, i, p), {
      required: true,
      maxItems: MAX_PUSH_INSTANCES,
    });
    const removed = readArray(
      issues,
      d['removed'],
      'delta.removed',
      (r, p) => readString(issues, r, p, { required: true, maxLength: 512 }),
      { required: true, maxItems: MAX_PUSH_INSTANCES },
    );
    if (base !== undefined && version !== undefined && version <= base) {
      issues.add('delta.version', 'must be greater than base');
      return undefined;
    }
    if (
      key === undefined ||
      base === undefined ||
      version === undefined ||
      complete === undefined ||
      upserts === undefined ||
      removed === undefined ||
      sentAt === undefined
    )
      return undefined;
    return { delta: { key, base, version, complete, upserts, removed }, sentAt };
  });

const decodeExports: Decoder<ExportsEvent> = decodeField('services', (issues, raw, path) =>
  readArray(issues, raw, path, (s, p) => readString(issues, s, p, KEY_RULES), {
    required: true,
    maxItems: FEDERATION_LIMITS.maxExports,
  }),
);

const decodeFetch = decodeField('key', (issues, raw, path) => readString(issues, raw, path, KEY_RULES));

/** The contract of the federation link: methods the exporter serves, events it sends. */
export const FEDERATION_LINK = Object.freeze({
  digest: rpcMethod('digest', decodeNoParams, decodeDigest),
  /** One exported service's datum (its key is the plain service name); `forbidden` if not exported. */
  fetch: rpcMethod('fetch', decodeFetch, decodeDatumView),
  datum: rpcEvent('datum', decodeNotice),
  delta: rpcEvent('delta', decodeDeltaNotice),
  exports: rpcEvent('exports', decodeExports),
});

export type { DatumView };
