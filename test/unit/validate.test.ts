import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Issues,
  at,
  describe as describeErrors,
  readArray,
  readBool,
  readInt,
  readObject,
  readOneOf,
  readString,
  readStringMap,
} from '../../proto/validate.js';

test('validate - at joins keys with dots and indexes with brackets', () => {
  assert.equal(at('', 'a'), 'a');
  assert.equal(at('a', 'b'), 'a.b');
  assert.equal(at('a', 2), 'a[2]');
  assert.equal(at(at(at('registrations', 0), 'instance'), 'port'), 'registrations[0].instance.port');
});

test('validate - describe formats every error on one line', () => {
  assert.equal(
    describeErrors([
      { path: 'a', message: 'is required' },
      { path: 'b[1]', message: 'must be a string' },
    ]),
    'a: is required; b[1]: must be a string',
  );
});

test('validate - Issues.result gives the value, the errors, or a body error when neither', () => {
  const ok = new Issues();
  assert.deepEqual(ok.result(5), { ok: true, value: 5 });
  const bad = new Issues();
  bad.add('', 'must be an object');
  bad.add('x', 'is required');
  assert.equal(bad.empty, false);
  assert.deepEqual(bad.result(5), {
    ok: false,
    errors: [
      { path: '(body)', message: 'must be an object' },
      { path: 'x', message: 'is required' },
    ],
  });
  assert.deepEqual(new Issues().result(undefined), {
    ok: false,
    errors: [{ path: '(body)', message: 'could not be decoded' }],
  });
});

test('validate - readString checks presence, type, length and pattern', () => {
  const issues = new Issues();
  assert.equal(readString(issues, undefined, 'a'), undefined);
  assert.equal(readString(issues, null, 'b', { required: true }), undefined);
  assert.equal(readString(issues, 3, 'c'), undefined);
  assert.equal(readString(issues, '', 'd', { required: true }), undefined);
  assert.equal(readString(issues, 'ab', 'e', { minLength: 3 }), undefined);
  assert.equal(readString(issues, 'abcd', 'f', { maxLength: 3 }), undefined);
  assert.equal(
    readString(issues, 'a b', 'g', { pattern: /^\S+$/, patternHint: 'must have no spaces' }),
    undefined,
  );
  assert.equal(readString(issues, 'x y', 'h', { pattern: /^\S+$/ }), undefined);
  assert.equal(readString(issues, '', 'i'), '');
  assert.equal(readString(issues, 'ok', 'j', { required: true, pattern: /^ok$/ }), 'ok');
  assert.deepEqual(issues.list, [
    { path: 'b', message: 'is required' },
    { path: 'c', message: 'must be a string' },
    { path: 'd', message: 'must not be empty' },
    { path: 'e', message: 'must be at least 3 characters' },
    { path: 'f', message: 'must be at most 3 characters' },
    { path: 'g', message: 'must have no spaces' },
    { path: 'h', message: 'must match /^\\S+$/' },
  ]);
});

test('validate - readInt accepts only safe integers within the bounds', () => {
  const issues = new Issues();
  assert.equal(readInt(issues, 7, 'a', { min: 1, max: 10 }), 7);
  assert.equal(readInt(issues, undefined, 'b'), undefined);
  assert.equal(readInt(issues, undefined, 'c', { required: true }), undefined);
  assert.equal(readInt(issues, 1.5, 'd'), undefined);
  assert.equal(readInt(issues, '5', 'e'), undefined);
  assert.equal(readInt(issues, 0, 'f', { min: 1, max: 10 }), undefined);
  assert.equal(readInt(issues, 11, 'g', { min: 1, max: 10 }), undefined);
  assert.equal(readInt(issues, -1, 'h'), undefined);
  assert.equal(readInt(issues, 2 ** 53, 'i'), undefined);
  assert.deepEqual(
    issues.list.map((e) => `${e.path}: ${e.message}`),
    [
      'c: is required',
      'd: must be an integer 0..9007199254740991',
      'e: must be an integer 0..9007199254740991',
      'f: must be an integer 1..10',
      'g: must be an integer 1..10',
      'h: must be an integer 0..9007199254740991',
      'i: must be an integer 0..9007199254740991',
    ],
  );
});

test('validate - readBool, readOneOf and readObject report their own wording', () => {
  const issues = new Issues();
  assert.equal(readBool(issues, false, 'a'), false);
  assert.equal(readBool(issues, undefined, 'b'), undefined);
  assert.equal(readBool(issues, undefined, 'c', true), undefined);
  assert.equal(readBool(issues, 'true', 'd'), undefined);
  assert.equal(readOneOf(issues, 'x', 'e', ['x', 'y']), 'x');
  assert.equal(readOneOf(issues, 'z', 'f', ['x', 'y']), undefined);
  assert.equal(readOneOf(issues, undefined, 'g', ['x'], true), undefined);
  assert.deepEqual(readObject(issues, { k: 1 }, 'h'), { k: 1 });
  assert.equal(readObject(issues, [], 'i'), undefined);
  assert.equal(readObject(issues, null, 'j'), undefined);
  assert.deepEqual(
    issues.list.map((e) => `${e.path}: ${e.message}`),
    [
      'c: is required',
      'd: must be true or false',
      'f: must be one of x, y',
      'g: is required',
      'i: must be an object',
      'j: must be an object',
    ],
  );
});

test('validate - readArray drops bad items but keeps every item error with its index', () => {
  const issues = new Issues();
  const out = readArray(issues, ['a', 1, 'b', null], 'tags', (v, p) =>
    readString(issues, v, p, { required: true }),
  );
  assert.deepEqual(out, ['a', 'b']);
  assert.deepEqual(issues.list, [
    { path: 'tags[1]', message: 'must be a string' },
    { path: 'tags[3]', message: 'is required' },
  ]);
  const more = new Issues();
  assert.equal(
    readArray(more, 'x', 'a', () => 1),
    undefined,
  );
  assert.equal(
    readArray(more, [1, 2, 3], 'b', () => 1, { maxItems: 2 }),
    undefined,
  );
  assert.equal(
    readArray(more, undefined, 'c', () => 1, { required: true }),
    undefined,
  );
  assert.deepEqual(
    readArray(more, undefined, 'd', () => 1),
    undefined,
  );
  assert.deepEqual(
    more.list.map((e) => `${e.path}: ${e.message}`),
    ['a: must be an array', 'b: must have at most 2 items', 'c: is required'],
  );
});

test('validate - readStringMap keeps key case and reports each bad entry by key', () => {
  const issues = new Issues();
  const out = readStringMap(
    issues,
    { Version: '1', version: '2', bad: 3, long: 'x'.repeat(6), '': 'e' },
    'Meta',
    { maxValueLength: 5 },
  );
  assert.deepEqual(out, { Version: '1', version: '2' });
  assert.deepEqual(issues.list, [
    { path: 'Meta.bad', message: 'must be a string' },
    { path: 'Meta.long', message: 'must be at most 5 characters' },
    { path: 'Meta.', message: 'key must be 1..128 characters' },
  ]);
  const more = new Issues();
  assert.equal(readStringMap(more, ['a'], 'm'), undefined);
  assert.equal(readStringMap(more, { a: 'x', b: 'y' }, 'n', { maxEntries: 1 }), undefined);
  assert.equal(readStringMap(more, null, 'o'), undefined);
  assert.deepEqual(
    more.list.map((e) => `${e.path}: ${e.message}`),
    ['m: must be an object of strings', 'n: must have at most 1 entries'],
  );
});
