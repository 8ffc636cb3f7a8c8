/**
 * The TLS variables: what is set decides what runs, half a configuration is refused naming the
 * variables, and a plaintext URL is refused once TLS is configured (no silent fallback).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readAgentConfig } from '../../agent/config.js';
import { readControlPlaneConfig } from '../../control-plane/config.js';
import {
  isLoopbackAddress,
  plaintextRefusal,
  readTlsConfig,
  tlsConfigured,
  tlsServing,
} from '../../proto/runtime/tls-config.js';
import { TlsSource } from '../../proto/runtime/tls.js';

test('tls-config - nothing set means plain links', () => {
  const c = readTlsConfig({}, { server: true });
  assert.equal(tlsConfigured(c), false);
  assert.equal(tlsServing(c), false);
  assert.equal(c.minVersion, 'TLSv1.2');
  const loaded = TlsSource.load(c);
  assert.ok(loaded.ok && loaded.value === undefined);
});

test('tls-config - a certificate without its key, or the reverse, is refused naming both variables', () => {
  assert.throws(
    () => readTlsConfig({ MESHREG_TLS_CERT_FILE: '/x.pem' }, { server: false }),
    /MESHREG_TLS_CERT_FILE is set but MESHREG_TLS_KEY_FILE is not/,
  );
  assert.throws(
    () => readTlsConfig({ MESHREG_TLS_KEY_FILE: '/x.key' }, { server: false }),
    /MESHREG_TLS_KEY_FILE is set but MESHREG_TLS_CERT_FILE is not/,
  );
});

test('tls-config - a CA alone is a client setting: refused for a server, fine for an agent', () => {
  assert.throws(
    () => readTlsConfig({ MESHREG_TLS_CA_FILE: '/ca.pem' }, { server: true }),
    /MESHREG_TLS_CA_FILE/,
  );
  const c = readTlsConfig({ MESHREG_TLS_CA_FILE: '/ca.pem' }, { server: false });
  assert.equal(tlsConfigured(c), true);
  assert.equal(tlsServing(c), false);
});

test('tls-config - bad values of the version and reload period are refused naming the variable', () => {
  assert.throws(
    () => readTlsConfig({ MESHREG_TLS_MIN_VERSION: 'TLSv1' }, { server: true }),
    /MESHREG_TLS_MIN_VERSION/,
  );
  assert.throws(
    () => readTlsConfig({ MESHREG_TLS_RELOAD_MS: '-1' }, { server: true }),
    /MESHREG_TLS_RELOAD_MS/,
  );
});

test('tls-config - an unreadable file fails the load with the variable and the path', () => {
  const r = TlsSource.load(readTlsConfig({ MESHREG_TLS_CA_FILE: '/nonexistent/ca.pem' }, { server: false }));
  assert.ok(!r.ok);
  assert.equal(r.error.code, 'invalid_argument');
  assert.match(r.error.message, /MESHREG_TLS_CA_FILE: cannot read \/nonexistent\/ca\.pem/);
});

test('tls-config - under TLS a plaintext URL is refused; wss and https pass', () => {
  const on = readTlsConfig({ MESHREG_TLS_CA_FILE: '/ca.pem' }, { server: false });
  const off = readTlsConfig({}, { server: false });
  assert.match(plaintextRefusal(on, 'ws://h:1/x', 'V') ?? '', /^V: ws:\/\/h:1\/x is plain text/);
  assert.match(plaintextRefusal(on, 'HTTP://h:1', 'V') ?? '', /plain text/);
  assert.equal(plaintextRefusal(on, 'wss://h:1/x', 'V'), undefined);
  assert.equal(plaintextRefusal(on, 'https://h:1', 'V'), undefined);
  assert.equal(plaintextRefusal(off, 'ws://h:1/x', 'V'), undefined);
});

test('tls-config - the agent dials wss:// by default under TLS and refuses a ws:// upstream', () => {
  const env = { MESHREG_TOKEN: 't', MESHREG_TLS_CA_FILE: '/ca.pem' };
  assert.deepEqual(readAgentConfig({ ...env, MESHREG_AGENT_UPSTREAM: '10.0.0.1:9600' }).upstream, [
    'wss://10.0.0.1:9600/v1/agent-link',
  ]);
  assert.match(readAgentConfig(env).upstream[0] ?? '', /^wss:\/\//);
  assert.throws(
    () => readAgentConfig({ ...env, MESHREG_AGENT_UPSTREAM: 'ws://10.0.0.1:9600/v1/agent-link' }),
    /MESHREG_AGENT_UPSTREAM: .* plain text/,
  );
});

test('tls-config - the control plane finds meta over wss:// under TLS and refuses a ws:// meta URL', () => {
  const env = { MESHREG_TLS_CERT_FILE: '/c.pem', MESHREG_TLS_KEY_FILE: '/k.pem' };
  assert.match(readControlPlaneConfig(env, { dev: true }).meta.url, /^wss:\/\//);
  assert.throws(
    () => readControlPlaneConfig({ ...env, MESHREG_META_URL: 'ws://m:9610/v1/meta-link' }, { dev: true }),
    /MESHREG_META_URL: .* plain text/,
  );
  const limits = readControlPlaneConfig({}, { dev: true }).connLimits;
  assert.deepEqual(limits, { maxPerIp: 512, maxPending: 256 });
  assert.throws(
    () => readControlPlaneConfig({ MESHREG_MAX_CONNECTIONS_PER_IP: '0' }, { dev: true }),
    /MESHREG_MAX_CONNECTIONS_PER_IP must be 1\.\.65536/,
  );
});

test('tls-config - only loopback addresses count as loopback for the plain-text warning', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1'])
    assert.equal(isLoopbackAddress(a), true, a);
  for (const a of ['0.0.0.0', '::', '10.0.0.5', '::ffff:10.0.0.5', '128.0.0.1', 'fe80::1'])
    assert.equal(isLoopbackAddress(a), false, a);
});
