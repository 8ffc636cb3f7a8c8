/**
 * Operator switches: the cluster-wide state meta keeps and pushes to every session over the meta
 * link (`switches` event), and the admin HTTP bodies that change it.
 *
 * Entries of `pushAllow` and `clientOff` match an agent connection by its remote IP address or by
 * the node name in its hello.
 */
import { SERVICE_NAME_PATTERN } from './instance.js';
import {
  decodeObject,
  readArray,
  readBool,
  readInt,
  readString,
  type Decoded,
  type Issues,
} from './validate.js';

export interface Switches {
  /** Grows with every change; a session ignores an older state. */
  readonly version: number;
  /** While true, no pushes go out except to `pushAllow`; subscribers keep their last list. */
  readonly pushStopped: boolean;
  readonly pushAllow: readonly string[];
  /** Agents refused (their publishers withdrawn) until the entry is removed. */
  readonly clientOff: readonly string[];
  /** Service names that may not be published / subscribed to. */
  readonly publishBlacklist: readonly string[];
  readonly subscribeBlacklist: readonly string[];
}

export const NO_SWITCHES: Switches = Object.freeze({
  version: 0,
  pushStopped: false,
  pushAllow: [],
  clientOff: [],
  publishBlacklist: [],
  subscribeBlacklist: [],
});

/** Body of `POST /admin/switches/push`. */
export interface PushSwitch {
  readonly stopped: boolean;
  readonly allow?: readonly string[];
}

/** Body of the list switches: entries to add and to remove. */
export interface ListEdit {
  readonly add: readonly string[];
  readonly remove: readonly string[];
}

const MAX_ENTRIES = 10_000;
const clientRules = { required: true, maxLength: 256, pattern: /^[^\s]+$/, patternHint: 'must not be blank' };
const serviceRules = {
  required: true,
  maxLength: 256,
  pattern: SERVICE_NAME_PATTERN,
  patternHint: 'must be a service name',
} as const;

type Rules = typeof clientRules | typeof serviceRules;

function list(
  issues: Issues,
  raw: unknown,
  path: string,
  rules: Rules,
  required: boolean,
): string[] | undefined {
  return readArray(issues, raw, path, (s, p) => readString(issues, s, p, rules), {
    required,
    maxItems: MAX_ENTRIES,
  });
}

/** Decodes the `switches` event (meta → session). */
export const decodeSwitches = (raw: unknown): Decoded<Switches> =>
  decodeObject(raw, (issues, o) => {
    const version = readInt(issues, o['version'], 'version', { required: true, min: 0 });
    const pushStopped = readBool(issues, o['pushStopped'], 'pushStopped', true);
    const pushAllow = list(issues, o['pushAllow'], 'pushAllow', clientRules, true);
    const clientOff = list(issues, o['clientOff'], 'clientOff', clientRules, true);
    const publishBlacklist = list(issues, o['publishBlacklist'], 'publishBlacklist', serviceRules, true);
    const subscribeBlacklist = list(
      issues,
      o['subscribeBlacklist'],
      'subscribeBlacklist',
      serviceRules,
      true,
    );
    if (
      version === undefined ||
      pushStopped === undefined ||
      pushAllow === undefined ||
      clientOff === undefined ||
      publishBlacklist === undefined ||
      subscribeBlacklist === undefined
    )
      return undefined;
    return { version, pushStopped, pushAllow, clientOff, publishBlacklist, subscribeBlacklist };
  });

/** Decodes the body of `POST /admin/switches/push`. */
export const decodePushSwitch = (raw: unknown): Decoded<PushSwitch> =>
  decodeObject(raw, (issues, o) => {
    const stopped = readBool(issues, o['stopped'], 'stopped', true);
    const allow = list(issues, o['allow'], 'allow', clientRules, false);
    if (stopped === undefined) return undefined;
    return allow === undefined ? { stopped } : { stopped, allow };
  });

/** Decodes a list edit; `kind` picks the entry rules (client addresses/names or service names). */
export const decodeListEdit = (raw: unknown, kind: 'clients' | 'services'): Decoded<ListEdit> =>
  decodeObject(raw, (issues, o) => {
    const rules = kind === 'clients' ? clientRules : serviceRules;
    const add = list(issues, o['add'], 'add', rules, false) ?? [];
    const remove = list(issues, o['remove'], 'remove', rules, false) ?? [];
    if (add.length === 0 && remove.length === 0)
      issues.add('add', 'add or remove must list at least one entry');
    return { add, remove };
  });

/** Decodes the `drain` event (meta → the member being drained). */
export const decodeDrain = (raw: unknown): Decoded<{ id: string }> =>
  decodeObject(raw, (issues, o) => {
    const id = readString(issues, o['id'], 'id', { required: true, maxLength: 256 });
    return id === undefined ? undefined : { id };
  });
