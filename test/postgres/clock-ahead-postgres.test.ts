// A record timestamped after the day of the partition it was appended to (the app's clock ahead of
// the writer's): a read from the next day must still find it. Partitions are by append day, and a
// scan with a window (the reading path of anything PostgreSQL does not compute in SQL) left out
// every partition of an earlier day. The SQL query path filters by the record's own time.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresLedgerSource } from '../../src/ledger/postgres/source';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { queryRecords, queryRecordsByScan } from '../../src/ledger/query';
import { makeRecord } from '../ledger/helpers';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

const dbs: TestDatabase[] = [];
afterAll(async () => {
  for (const db of dbs) await db.drop();
});

describe('PostgreSQL: a record timestamped after its partition’s day', () => {
  it('is found by a scan and a query from the next day', async () => {
    const db = await createTestDatabase('clock_ahead');
    dbs.push(db);
    let now = new Date('2026-03-01T12:00:00.000Z');
    const ledger = await PostgresLedger.open({ url: db.url, clock: () => now });
    const span = () => randomBytes(8).toString('hex');
    await ledger.append([makeRecord({ span_id: span(), timestamp: '2026-02-28T11:00:00.000Z' })]);
    now = new Date('2026-03-01T23:59:50.000Z');
    const ahead = makeRecord({ span_id: span(), timestamp: '2026-03-02T00:00:20.000Z' });
    await ledger.append([ahead]);
    now = new Date('2026-03-02T10:00:00.000Z');
    const later = makeRecord({ span_id: span(), timestamp: '2026-03-02T09:00:00.000Z' });
    await ledger.append([later]);
    await ledger.close();

    const source = new PostgresLedgerSource(db.url);
    try {
      for (const read of [queryRecordsByScan, queryRecords]) {
        const found: string[] = [];
        for await (const hit of read(source, { from: Date.parse('2026-03-02T00:00:00.000Z') })) found.push(hit.record.request_id);
        expect(found, read.name).toEqual([ahead.request_id, later.request_id]);
        const fromLater: string[] = [];
        for await (const hit of read(source, { from: Date.parse('2026-03-02T05:00:00.000Z') })) fromLater.push(hit.record.request_id);
        expect(fromLater, read.name).toEqual([later.request_id]);
      }
    } finally {
      await source.close();
    }
  });
});
