import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serverEvents } from '../bench/server-watch.js';

const line = (msg: string, fields: Record<string, unknown> = {}): string =>
  JSON.stringify({ level: 'info', msg, ...fields });

test('bench server events - counts expiries, dropped publishers, rejoins and reconnects beyond the first', () => {
  const log = [
    line('member joined', { id: 'data-1' }),
    line('member joined', { id: 'session-1' }),
    line('agent connected', { nodeName: 'a-0' }),
    line('agent connected', { nodeName: 'a-1' }),
    JSON.stringify({ level: 'warn', msg: 'member lease expired; removed', id: 'data-1' }),
    line('member joined', { id: 'data-1' }),
    line('session did not come back; dropping its publishers', { sessionId: 'session-1' }),
    line('agent disconnected', { code: 1006 }),
    line('agent disconnected', { code: 1006 }),
    line('agent disconnected', { code: 4008 }),
    line('agent connected', { nodeName: 'a-0' }),
    'not a log line (a crash trace)',
    '',
  ].join('\n');
  assert.deepEqual(serverEvents(log), {
    memberExpiries: 1,
    memberRejoins: 1,
    publishersDropped: 1,
    agentReconnects: 1,
    agentCloseCodes: { '1006': 2, '4008': 1 },
  });
});

test('bench server events - a calm run counts nothing', () => {
  const log = [line('member joined', { id: 'data-1' }), line('agent connected', { nodeName: 'a-0' })].join(
    '\n',
  );
  assert.deepEqual(serverEvents(log), {
    memberExpiries: 0,
    memberRejoins: 0,
    publishersDropped: 0,
    agentReconnects: 0,
    agentCloseCodes: {},
  });
});
