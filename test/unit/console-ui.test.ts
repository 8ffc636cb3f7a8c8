/**
 * The console's pure browser modules: hash routes and the Server-Sent Events framing of the live
 * stream (any chunking of a stream gives the same events).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { pageHref, parseRoute, serviceHref } from '../../control-plane/console/ui/router.js';
import { parseEvent, SseSplitter, type SseEvent } from '../../control-plane/console/ui/sse.js';

test('console ui - hash routes name the page, the service and the query', () => {
  assert.equal(parseRoute('').page, 'overview');
  assert.equal(parseRoute('#/nowhere').page, 'overview');
  assert.equal(parseRoute('#/agents').page, 'agents');
  const s = parseRoute('#/services?filter=web&health=critical');
  assert.equal(s.page, 'services');
  assert.equal(s.query.get('filter'), 'web');
  assert.equal(s.query.get('health'), 'critical');
  assert.deepEqual(parseRoute('#/services/a%2Fb'), {
    page: 'service',
    name: 'a/b',
    query: new URLSearchParams(),
  });
  assert.equal(parseRoute('#/services/%E0%A4%A').name, '%E0%A4%A', 'a malformed escape stays as typed');
  assert.equal(pageHref('services', { filter: 'x', zone: '' }), '#/services?filter=x');
});

test('console ui - a service name survives its detail link', () => {
  fc.assert(
    fc.property(fc.string({ minLength: 1, maxLength: 40 }), (name) => {
      const r = parseRoute(serviceHref(name));
      assert.equal(r.page, 'service');
      assert.equal(r.name, name);
    }),
  );
});

test('console ui - an event block gives its name and data; comments give nothing', () => {
  assert.deepEqual(parseEvent('event: changed\ndata: {"parts":["services"]}'), {
    event: 'changed',
    data: '{"parts":["services"]}',
  });
  assert.deepEqual(parseEvent('data: a\ndata: b'), { event: 'message', data: 'a\nb' });
  assert.equal(parseEvent(': heartbeat'), undefined);
});

test('console ui - any chunking of an event stream gives the same events', () => {
  const eventArb = fc.record({
    event: fc.constantFrom('changed', 'message', 'other'),
    data: fc.stringMatching(/^[^\r\n]{0,30}$/),
  });
  fc.assert(
    fc.property(
      fc.array(eventArb, { maxLength: 8 }),
      fc.constantFrom('\n', '\r\n', '\r'),
      fc.array(fc.nat(), { maxLength: 10 }),
      (events, eol, cuts) => {
        const text = events
          .map((e) => `: comment${eol}event: ${e.event}${eol}data: ${e.data}${eol}${eol}`)
          .join('');
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const splitter = new SseSplitter();
        const got: SseEvent[] = [];
        let from = 0;
        for (const p of [...points, text.length]) {
          got.push(...splitter.push(text.slice(from, p)));
          from = p;
        }
        assert.deepEqual(
          got,
          events.map((e) => ({ event: e.event, data: e.data })),
        );
      },
    ),
  );
});

test('console ui - the compiled page loads only its own sibling modules, nothing of the server', () => {
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../control-plane/console/ui');
  const modules = readdirSync(dir).filter((n) => n.endsWith('.js'));
  assert.ok(modules.includes('main.js'), `compiled modules in ${dir}`);
  for (const m of modules) {
    const code = readFileSync(path.join(dir, m), 'utf8');
    const specifiers = [
      ...code.matchAll(/^\s*import\s+(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm),
      ...code.matchAll(/^\s*export\s+[^'";]*?\s+from\s+['"]([^'"]+)['"]/gm),
    ].map((x) => x[1] ?? '');
    assert.ok(!/\bimport\s*\(/.test(code), `${m} has a dynamic import`);
    if (m === 'main.js') assert.ok(specifiers.length >= 5, `main.js imports found: ${specifiers.join(', ')}`);
    for (const s of specifiers) assert.match(s, /^\.\/[\w-]+\.js$/, `${m} imports ${s}`);
    assert.ok(!code.includes('proto/'), `${m} mentions proto/`);
  }
});
