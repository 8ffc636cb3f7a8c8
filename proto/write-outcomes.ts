/**
 * What a data server answers, per item, to a session's `publish` and `unpublish` (the data link):
 * one outcome per item, in the order of the items. `stale_epoch` is an item whose slot the server
 * does not lead at the caller's epoch: the caller retries it once its slot table is newer.
 */
import { Issues, readArray, readObject, readOneOf, type Decoded } from './validate.js';

/** At most as many outcomes as a publish or unpublish may carry items. */
const MAX_OUTCOMES = 100_000;

/**
 * Per published item: `applied` (stored, the datum changed), `unchanged` (this version was held),
 * `owner-changed` (held, now owned by the caller's connection), `stale` (a newer version is held),
 * `superseded` (the registration was withdrawn at this or a newer version: its tombstone refuses
 * the publish for good, so the caller settles it and never retries it), `stale_epoch` (not this
 * server's slot at the caller's epoch).
 */
export const PUBLISH_ITEM_OUTCOMES = [
  'applied',
  'owner-changed',
  'unchanged',
  'stale',
  'superseded',
  'stale_epoch',
] as const;
export type PublishOutcome = (typeof PUBLISH_ITEM_OUTCOMES)[number];

/**
 * Per withdrawn item: `removed` (the datum changed), `absent` (nothing held for it), `stale` (a
 * newer version than the withdrawal is held and stays), `stale_epoch` (as for publish).
 */
export const UNPUBLISH_ITEM_OUTCOMES = ['removed', 'absent', 'stale', 'stale_epoch'] as const;
export type UnpublishOutcome = (typeof UNPUBLISH_ITEM_OUTCOMES)[number];

/** The result of `publish`: one outcome per item. */
export interface PublishOutcomes {
  readonly outcomes: readonly PublishOutcome[];
}

/** The result of `unpublish`: one outcome per item. */
export interface UnpublishOutcomes {
  readonly outcomes: readonly UnpublishOutcome[];
}

export const decodePublishOutcomes = (raw: unknown): Decoded<PublishOutcomes> =>
  decodeOutcomes(raw, PUBLISH_ITEM_OUTCOMES);

export const decodeUnpublishOutcomes = (raw: unknown): Decoded<UnpublishOutcomes> =>
  decodeOutcomes(raw, UNPUBLISH_ITEM_OUTCOMES);

function decodeOutcomes<T extends string>(
  raw: unknown,
  names: readonly T[],
): Decoded<{ outcomes: readonly T[] }> {
  const issues = new Issues();
  const o = readObject(issues, raw, '');
  if (o === undefined) return issues.result<{ outcomes: readonly T[] }>(undefined);
  const outcomes = readArray(
    issues,
    o['outcomes'],
    'outcomes',
    (x, p) => readOneOf(issues, x, p, names, true),
    {
      required: true,
      maxItems: MAX_OUTCOMES,
    },
  );
  return issues.result(outcomes === undefined ? undefined : { outcomes });
}
