import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EmbeddedStore } from '../../control-plane/meta/meta-store.js';
import type { SlotTable } from '../../proto/slot-table.js';

const table = (epoch: number): SlotTable => ({ epoch, slotCount: 1, slots: [] });

test('meta store - the embedded store fences a table arranged from an older revision', async () => {
  const store = new EmbeddedStore();
  const seen: [number | undefined, string][] = [];
  await store.start({
    members: () => undefined,
    table: (t, revision) => seen.push([t?.epoch, revision]),
    leadership: () => undefined,
    health: () => undefined,
  });
  assert.equal(await store.saveTable(table(1), '0'), 'saved');
  assert.equal(
    await store.saveTable(table(2), '0'),
    'fenced',
    'arranged from the table before the last write',
  );
  assert.equal(await store.saveTable(table(2), '1'), 'saved');
  assert.deepEqual(seen, [
    [1, '1'],
    [2, '2'],
  ]);
});
