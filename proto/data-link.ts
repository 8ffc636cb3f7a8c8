/**
 * The data link (session → data server): a session writes publishers, reads datums and the
 * catalog, declares which keys it watches, and receives change notices; the data server calls back
 * `collect` on the session when it must rebuild slots it now leads.
 */
import {
  KEY_RULES,
  decodeCatalogView,
  decodeDatumView,
  decodeOwnedPublisher,
  decodeSlotSelection,
  readDatumChange,
  readItems,
  readKeys,
  readPublishItem,
  readUnpublishItem,
  type DatumChange,
  type PublishItem,
  type SlotSelection,
  type UnpublishItem,
} from './cluster-records.js';
import {
  HELLO_METHOD,
  decodeAck,
  decodeNoParams,
  pagedMethod,
  rpcEvent,
  rpcMethod,
  type Decoder,
} from './rpc.js';
import { decodePublishOutcomes, decodeUnpublishOutcomes } from './write-outcomes.js';
import { readTraceparent, withTraceparent } from './trace-context.js';
import {
  at,
  decodeField,
  decodeObject,
  readBool,
  readInt,
  readObject,
  readString,
  type Decoded,
} from './validate.js';

export const DATA_LINK_PATH = '/v1/data-link';

export interface PublishParams {
  readonly epoch: number;
  readonly owner: string;
  readonly items: readonly PublishItem[];
  /** W3C trace context of the session span that made the write (optional). */
  readonly traceparent?: string;
}

export interface UnpublishParams {
  readonly epoch: number;
  readonly items: readonly UnpublishItem[];
}

export interface InterestParams {
  readonly add: readonly string[];
  readonly remove: readonly string[];
  readonly catalog?: boolean;
}

/** A migrating data server asks a session for its publishers in these slots. */
export type CollectParams = SlotSelection;

export interface ChangesEvent {
  readonly changes: readonly DatumChange[];
}

export interface CatalogEvent {
  readonly version: number;
}

export const decodePublishParams = (raw: unknown): Decoded<PublishParams> =>
  decodeObject(raw, (issues, o) => {
    const epoch = readInt(issues, o['epoch'], 'epoch', { required: true });
    const owner = readString(issues, o['owner'], 'owner', { required: true, maxLength: 512 });
    const items = readItems(issues, o['items'], 'items', readPublishItem);
    const traceparent = readTraceparent(issues, o['traceparent'], 'traceparent');
    if (epoch === undefined || owner === undefined || items === undefined) return undefined;
    return { epoch, owner, items, ...withTraceparent(traceparent) };
  });

export const decodeUnpublishParams = (raw: unknown): Decoded<UnpublishParams> =>
  decodeObject(raw, (issues, o) => {
    const epoch = readInt(issues, o['epoch'], 'epoch', { required: true });
    const items = readItems(issues, o['items'], 'items', readUnpublishItem);
    return epoch === undefined || items === undefined ? undefined : { epoch, items };
  });

const decodeOwner = decodeField('owner', (issues, raw, path) =>
  readString(issues, raw, path, { required: true, maxLength: 512 }),
);
const decodeKey = decodeField('key', (issues, raw, path) => readString(issues, raw, path, KEY_RULES));
const decodeKeys: Decoder<{ readonly keys: readonly string[] }> = decodeField('keys', readKeys);

const decodeVersions = (raw: unknown): Decoded<{ versions: Record<string, number> }> =>
  decodeObject(raw, (issues, o) => {
    const vo = readObject(issues, o['versions'], 'versions');
    if (vo === undefined) return undefined;
    const versions: Record<string, number> = {};
    for (const [k, v] of Object.entries(vo)) {
      const n = readInt(issues, v, at('versions', k), { required: true });
      if (n !== undefined) versions[k] = n;
    }
    return { versions };
  });

export const decodeInterest = (raw: unknown): Decoded<InterestParams> =>
  decodeObject(raw, (issues, o) => {
    const add = readKeys(issues, o['add'], 'add', false) ?? [];
    const remove = readKeys(issues, o['remove'], 'remove', false) ?? [];
    const catalog = readBool(issues, o['catalog'], 'catalog');
    return catalog === undefined ? { add, remove } : { add, remove, catalog };
  });

export const decodeChanges: Decoder<ChangesEvent> = decodeField('changes', (issues, raw, path) =>
  readItems(issues, raw, path, readDatumChange),
);
const decodeCatalogEvent: Decoder<CatalogEvent> = decodeField('version', (issues, raw, path) =>
  readInt(issues, raw, path, { required: true }),
);

/** The contract of the data link. Methods are served by the data server unless noted. */
export const DATA_LINK = Object.freeze({
  hello: HELLO_METHOD,
  /** Writes publishers of one owner; per item, `stale_epoch` where this server does not lead its slot. */
  publish: rpcMethod('publish', decodePublishParams, decodePublishOutcomes),
  unpublish: rpcMethod('unpublish', decodeUnpublishParams, decodeUnpublishOutcomes),
  /** Removes every publisher still owned by `owner` (a connection that did not come back). */
  dropOwner: rpcMethod('dropOwner', decodeOwner, decodeAck),
  fetch: rpcMethod('fetch', decodeKey, decodeDatumView),
  fetchCatalog: rpcMethod('fetchCatalog', decodeNoParams, decodeCatalogView),
  versions: rpcMethod('versions', decodeKeys, decodeVersions),
  /** Adds and removes keys (and the catalog) the session wants change notices for. */
  interest: rpcMethod('interest', decodeInterest, decodeAck),
  /** Served by the session: its publishers in the slots (paged: it may hold very many). */
  collect: pagedMethod('collect', decodeSlotSelection, decodeOwnedPublisher),
  /** Changes of keys the session declared interest in. */
  changes: rpcEvent('changes', decodeChanges),
  /** The catalog changed (to a session that declared catalog interest). */
  catalog: rpcEvent('catalog', decodeCatalogEvent),
});
