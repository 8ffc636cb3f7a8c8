/**
 * Runtime validation for everything that crosses a process boundary.
 *
 * Decoders take `unknown`, never throw on bad input, and report *every* problem with its path
 * (`instances[2].port: must be an integer 1..65535`), so a caller can answer with one clear error.
 * The helpers are deliberately small: a field reader per primitive, each appending to a shared
 * {@link Issues} list and returning `undefined` when the value is missing or wrong.
 */

/** One validation problem: where (a dotted/bracketed path) and what. */
export interface FieldError {
  readonly path: string;
  readonly message: string;
}

/** The result of a decoder: the typed value, or every error found. */
export type Decoded<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errors: readonly FieldError[] };

/** Collects errors while a decoder walks its input. */
export class Issues {
  readonly list: FieldError[] = [];

  add(path: string, message: string): undefined {
    this.list.push({ path: path === '' ? '(body)' : path, message });
    return undefined;
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  /** Finishes a decoder: the value when nothing was reported, else the errors. */
  result<T>(value: T | undefined): Decoded<T> {
    if (this.list.length === 0 && value !== undefined) return { ok: true, value };
    if (this.list.length === 0)
      return { ok: false, errors: [{ path: '(body)', message: 'could not be decoded' }] };
    return { ok: false, errors: this.list };
  }
}

/** Joins a path and a key: `a` + `b` → `a.b`, `a` + 2 → `a[2]`. */
export function at(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

/** Formats errors as one line, for logs and WebSocket close reasons. */
export function describe(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.path}: ${e.message}`).join('; ');
}

export function isRecord(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw);
}

export function readObject(issues: Issues, raw: unknown, path: string): Record<string, unknown> | undefined {
  if (isRecord(raw)) return raw;
  return issues.add(path, 'must be an object');
}

/**
 * A decoder of a JSON object: `read` gets the object's fields and reports into `issues`; a
 * non-object is one error at the root. The common frame of every object decoder.
 */
export function decodeObject<T>(
  raw: unknown,
  read: (issues: Issues, o: Record<string, unknown>) => T | undefined,
): Decoded<T> {
  const issues = new Issues();
  const o = readObject(issues, raw, '');
  return issues.result(o === undefined ? undefined : read(issues, o));
}

/**
 * A decoder of an object with the one field `key` that matters, read with `read`: `{ [key]: value }`
 * (a cursor, an owner, a version). Other fields are ignored.
 */
export function decodeField<K extends string, T>(
  key: K,
  read: (issues: Issues, raw: unknown, path: string) => T | undefined,
): (raw: unknown) => Decoded<{ readonly [k in K]: T }> {
  return (raw) =>
    decodeObject(raw, (issues, o) => {
      const value = read(issues, o[key], key);
      // A computed key widens to an index signature; it is exactly `key` here.
      return value === undefined ? undefined : ({ [key]: value } as { readonly [k in K]: T });
    });
}

export interface StringRules {
  readonly required?: boolean;
  /** Minimum length; 1 by default for required strings, 0 otherwise. */
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: RegExp;
  /** Human wording of `pattern`, for the error. */
  readonly patternHint?: string;
}

/** In `u` mode a surrogate pair is one code point, so this matches only unpaired halves. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Keys quoted in error paths are cut to this many characters, so an error never echoes a huge key. */
const MAX_KEY_IN_PATH = 64;

/**
 * Sets `obj[key]` as an own data property even for keys such as `__proto__`, which a plain
 * assignment would treat as the prototype (dropping the entry, or worse, re-parenting the object).
 */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

export function readString(
  issues: Issues,
  raw: unknown,
  path: string,
  rules: StringRules = {},
): string | undefined {
  if (raw === undefined || raw === null)
    return rules.required === true ? issues.add(path, 'is required') : undefined;
  if (typeof raw !== 'string') return issues.add(path, 'must be a string');
  const min = rules.minLength ?? (rules.required === true ? 1 : 0);
  if (raw.length < min)
    return issues.add(path, min === 1 ? 'must not be empty' : `must be at least ${min} characters`);
  const max = rules.maxLength ?? 1024;
  if (raw.length > max) return issues.add(path, `must be at most ${max} characters`);
  // A lone surrogate cannot be written as UTF-8 or percent-encoded into a URL: such a value would be
  // stored but could never be addressed again.
  if (LONE_SURROGATE.test(raw)) return issues.add(path, 'must be well-formed Unicode (no lone surrogates)');
  if (rules.pattern !== undefined && raw.length > 0 && !rules.pattern.test(raw)) {
    return issues.add(path, rules.patternHint ?? `must match ${String(rules.pattern)}`);
  }
  return raw;
}

export interface IntRules {
  readonly required?: boolean;
  readonly min?: number;
  readonly max?: number;
}

export function readInt(
  issues: Issues,
  raw: unknown,
  path: string,
  rules: IntRules = {},
): number | undefined {
  if (raw === undefined || raw === null)
    return rules.required === true ? issues.add(path, 'is required') : undefined;
  const min = rules.min ?? 0;
  const max = rules.max ?? Number.MAX_SAFE_INTEGER;
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < min || raw > max) {
    return issues.add(path, `must be an integer ${min}..${max}`);
  }
  return raw;
}

export function readBool(issues: Issues, raw: unknown, path: string, required = false): boolean | undefined {
  if (raw === undefined || raw === null) return required ? issues.add(path, 'is required') : undefined;
  if (typeof raw !== 'boolean') return issues.add(path, 'must be true or false');
  return raw;
}

export function readOneOf<T extends string>(
  issues: Issues,
  raw: unknown,
  path: string,
  allowed: readonly T[],
  required = false,
): T | undefined {
  if (raw === undefined || raw === null) return required ? issues.add(path, 'is required') : undefined;
  if (typeof raw === 'string' && (allowed as readonly string[]).includes(raw)) return raw as T;
  return issues.add(path, `must be one of ${allowed.join(', ')}`);
}

export interface ArrayRules {
  readonly required?: boolean;
  readonly maxItems?: number;
}

/** Reads an array and decodes each item with `item`; failed items are dropped (their errors kept). */
export function readArray<T>(
  issues: Issues,
  raw: unknown,
  path: string,
  item: (raw: unknown, path: string) => T | undefined,
  rules: ArrayRules = {},
): T[] | undefined {
  if (raw === undefined || raw === null)
    return rules.required === true ? issues.add(path, 'is required') : undefined;
  if (!Array.isArray(raw)) return issues.add(path, 'must be an array');
  const max = rules.maxItems ?? 1000;
  if (raw.length > max) return issues.add(path, `must have at most ${max} items`);
  const out: T[] = [];
  for (let i = 0; i < raw.length; i++) {
    const value = item(raw[i], at(path, i));
    if (value !== undefined) out.push(value);
  }
  return out;
}

export interface MapRules {
  readonly maxEntries?: number;
  readonly maxKeyLength?: number;
  readonly maxValueLength?: number;
}

/** Reads a string → string map (Consul's `Meta`). Keys are user data and keep their case. */
export function readStringMap(
  issues: Issues,
  raw: unknown,
  path: string,
  rules: MapRules = {},
): Record<string, string> | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isRecord(raw)) return issues.add(path, 'must be an object of strings');
  const entries = Object.entries(raw);
  const maxEntries = rules.maxEntries ?? 64;
  if (entries.length > maxEntries) return issues.add(path, `must have at most ${maxEntries} entries`);
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    const keyPath = at(path, key.length > MAX_KEY_IN_PATH ? `${key.slice(0, MAX_KEY_IN_PATH)}...` : key);
    if (key.length === 0 || key.length > (rules.maxKeyLength ?? 128)) {
      issues.add(keyPath, `key must be 1..${rules.maxKeyLength ?? 128} characters`);
      continue;
    }
    if (LONE_SURROGATE.test(key)) {
      issues.add(keyPath, 'key must be well-formed Unicode (no lone surrogates)');
      continue;
    }
    if (typeof value !== 'string') {
      issues.add(keyPath, 'must be a string');
      continue;
    }
    if (value.length > (rules.maxValueLength ?? 512)) {
      issues.add(keyPath, `must be at most ${rules.maxValueLength ?? 512} characters`);
      continue;
    }
    if (LONE_SURROGATE.test(value)) {
      issues.add(keyPath, 'must be well-formed Unicode (no lone surrogates)');
      continue;
    }
    setOwn(out, key, value);
  }
  return out;
}
