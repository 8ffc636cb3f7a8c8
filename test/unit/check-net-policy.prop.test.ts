/**
 * Property tests of what keeps health checks from being turned against the network: the CIDR
 * matcher (IPv4, IPv6 and IPv4-mapped IPv6, checked against Node's own `net.BlockList`), the target
 * policy built on it, and the redirect rule (only same scheme, host and port, and a cap).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { inCidr, parseCidr, parseCidrList, parseIp, type Cidr } from '../../agent/checks/cidr.js';
import { MAX_CHECK_REDIRECTS, TargetPolicy, redirectStep } from '../../agent/checks/check-net-policy.js';

const RUNS = { numRuns: 500 };

const cidrOf = (text: string): Cidr => {
  const c = parseCidr(text);
  assert.ok(typeof c !== 'string', `${text}: ${typeof c === 'string' ? c : ''}`);
  return c;
};

const matches = (ip: string, c: Cidr): boolean => {
  const bytes = parseIp(ip);
  assert.ok(bytes !== undefined, ip);
  return inCidr(bytes, c);
};

test('cidr - IPv4 membership agrees with net.BlockList', () => {
  fc.assert(
    fc.property(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 32 }), (addr, base, prefix) => {
      const list = new net.BlockList();
      list.addSubnet(base, prefix, 'ipv4');
      assert.equal(matches(addr, cidrOf(`${base}/${prefix}`)), list.check(addr, 'ipv4'));
    }),
    RUNS,
  );
});

test('cidr - IPv6 membership agrees with net.BlockList', () => {
  fc.assert(
    fc.property(fc.ipV6(), fc.ipV6(), fc.integer({ min: 0, max: 128 }), (addr, base, prefix) => {
      const list = new net.BlockList();
      list.addSubnet(base, prefix, 'ipv6');
      assert.equal(matches(addr, cidrOf(`${base}/${prefix}`)), list.check(addr, 'ipv6'));
    }),
    RUNS,
  );
});

test('cidr - an IPv4 address written as IPv4-mapped IPv6 matches exactly as the IPv4 form does', () => {
  fc.assert(
    fc.property(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 32 }), (addr, base, prefix) => {
      const c = cidrOf(`${base}/${prefix}`);
      assert.equal(matches(`::ffff:${addr}`, c), matches(addr, c));
      // And a mapped range written in IPv6 holds the same IPv4 addresses.
      const mapped = cidrOf(`::ffff:${base}/${96 + prefix}`);
      assert.equal(matches(addr, mapped), matches(addr, c));
    }),
    RUNS,
  );
});

test('cidr - a range holds its own base and loses an address that differs inside the prefix', () => {
  fc.assert(
    fc.property(fc.ipV6(), fc.integer({ min: 1, max: 128 }), (base, prefix) => {
      const c = cidrOf(`${base}/${prefix}`);
      const bytes = parseIp(base);
      assert.ok(bytes !== undefined);
      assert.ok(inCidr(bytes, c));
      const flipped = Uint8Array.from(bytes);
      const bit = prefix - 1;
      flipped[bit >> 3] = (flipped[bit >> 3] ?? 0) ^ (0x80 >> (bit & 7));
      assert.equal(inCidr(flipped, c), false);
    }),
    RUNS,
  );
});

test('cidr - bad entries are refused, each named', () => {
  for (const bad of ['10.0.0.0/33', '::/129', 'example.com', '10.0.0/8', '1.2.3.4/-1', 'fe80::1%eth0', '/8'])
    assert.equal(typeof parseCidr(bad), 'string', bad);
  const list = parseCidrList('10.0.0.0/8, nope, fd00::/8, 1.2.3.4/40');
  assert.equal(list.ok, false);
  if (!list.ok) assert.equal(list.errors.length, 2);
  assert.deepEqual(
    (parseCidrList(' 10.0.0.0/8 ,192.168.1.7') as { ok: true; value: Cidr[] }).value.map((c) => c.prefix),
    [104, 128],
  );
});

test('check targets - with an allow list only loopback, this host and the list are allowed', () => {
  const policy = new TargetPolicy([cidrOf('10.1.0.0/16'), cidrOf('fd00:1::/32')], [cidrOf('192.0.2.10')]);
  for (const ok of [
    '127.0.0.1',
    '127.9.9.9',
    '::1',
    '::ffff:127.0.0.1',
    '10.1.200.3',
    'fd00:1::5',
    '192.0.2.10',
  ])
    assert.equal(policy.allowsAddress(ok), true, ok);
  for (const no of ['10.2.0.1', '169.254.169.254', '::ffff:169.254.169.254', 'fd00:2::1', '192.0.2.11', 'x'])
    assert.equal(policy.allowsAddress(no), false, no);
  assert.match(policy.literalRefusal('[fd00:2::1]') ?? '', /outside loopback/);
  assert.equal(policy.literalRefusal('example.internal'), undefined, 'a name is resolved later');
  fc.assert(
    fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (ip) => {
      assert.equal(new TargetPolicy(undefined, []).allowsAddress(ip), true);
    }),
    RUNS,
  );
});

test('check targets - a name is judged by every address it resolves to, at registration and at connect', async () => {
  const strict = new TargetPolicy([], []);
  assert.equal(await strict.refusal('localhost'), undefined);
  assert.match((await strict.refusal('198.51.100.1')) ?? '', /outside loopback/);
  assert.match((await strict.refusal('no-such-host.invalid')) ?? '', /does not resolve/);
  const looked = await new Promise<{ err: NodeJS.ErrnoException | null; address: unknown }>((resolve) => {
    strict.lookup('localhost', { all: true }, (err, address) => {
      resolve({ err, address });
    });
  });
  assert.equal(looked.err, null);
  assert.ok(Array.isArray(looked.address) && looked.address.length > 0);
  const refused = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    new TargetPolicy([cidrOf('10.0.0.0/8')], []).lookup('localhost', {}, (err) => {
      resolve(err);
    });
  });
  assert.equal(refused, null, 'loopback names are always allowed');
});

const origin = fc.record({
  scheme: fc.constantFrom('http', 'https'),
  host: fc.constantFrom('127.0.0.1', 'localhost', 'svc.internal', '[::1]', '10.0.0.7'),
  port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
});
const originText = (o: { scheme: string; host: string; port: number | undefined }): string =>
  `${o.scheme}://${o.host}${o.port === undefined ? '' : `:${String(o.port)}`}`;

test('redirects - followed only to the same scheme, host and port, and at most the cap', () => {
  fc.assert(
    fc.property(
      origin,
      origin,
      fc.webPath(),
      fc.integer({ min: 0, max: MAX_CHECK_REDIRECTS + 2 }),
      (a, b, p, followed) => {
        const from = new URL(`${originText(a)}/health`);
        const location = `${originText(b)}${p}`;
        const step = redirectStep(from, location, 'same-origin', followed);
        const same = new URL(location).origin === from.origin;
        assert.equal('follow' in step, same && followed < MAX_CHECK_REDIRECTS);
        if ('follow' in step) assert.equal(step.follow.origin, from.origin);
        assert.ok('stop' in redirectStep(from, location, 'none', 0));
      },
    ),
    RUNS,
  );
});

test('redirects - a relative location stays on the origin; tricks that change it do not', () => {
  const from = new URL('http://127.0.0.1:8080/health');
  for (const rel of ['/other', 'other', '../x', '?q=1', '/./a/../b'])
    assert.ok('follow' in redirectStep(from, rel, 'same-origin', 0), rel);
  for (const trick of [
    '//127.0.0.1:8081/x',
    '//evil.example/x',
    'http://127.0.0.1:8080@evil.example/',
    'http://user:pw@127.0.0.1:8080/',
    'https://127.0.0.1:8080/',
    'http://127.0.0.1/',
    '/\\evil.example/x',
    'http://0x7f.0.0.1:8080/',
    'http:evil.example',
  ]) {
    const step = redirectStep(from, trick, 'same-origin', 0);
    if ('follow' in step) assert.equal(step.follow.origin, from.origin, trick);
    else assert.match(step.stop, /another origin|invalid/, trick);
  }
});
