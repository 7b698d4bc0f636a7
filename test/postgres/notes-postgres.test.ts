/**
 * Issue 17 on the PostgreSQL backend: the checkpoint note in the checkpoint's row (migration 3),
 * witness cosignatures in llm_audit.cosigned_notes, written by the writer role, read back by the
 * CLI and checked by the stock Go note verifier.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeyPair, loadPublicKey } from '../../src/ledger/checkpoint';
import { parseVerifierKey, verifierKey } from '../../src/ledger/note';
import { PostgresLedger } from '../../src/ledger/postgres/writer';
import { makeRecord } from '../ledger/helpers';
import { MAIN, ensureBuilt, scratchDir } from '../ingest/helpers';
import { requireGoTools, startWitness, tlogcheck } from '../support/go-tools';
import { stopAll } from '../support/processes';
import { adminQuery, createTestDatabase, loginRole, postgresUrl, type TestDatabase } from '../support/postgres';

const ORIGIN = 'audit.example.com/llm/pg';

beforeAll(() => {
  requireGoTools();
  ensureBuilt();
  postgresUrl();
}, 600_000);
afterAll(() => stopAll(5_000));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('C2SP notes and witnesses on PostgreSQL', () => {
  let db: TestDatabase;
  afterAll(async () => db?.drop());

  it('stores each signed checkpoint note in its row and the cosigned copies beside it; the CLI and Go read them', async () => {
    db = await createTestDatabase('notes');
    const work = scratchDir('pgnotes-');
    const { privatePem, publicPem } = generateSigningKeyPair();
    const priv = join(work, 'k.pem');
    writeFileSync(priv, privatePem, { mode: 0o600 });
    writeFileSync(`${priv}.pub`, publicPem);
    const vkey = verifierKey(ORIGIN, loadPublicKey(`${priv}.pub`));
    const witness = await startWitness(work, ORIGIN, vkey);
    const role = await loginRole(db, 'llm_audit_writer');
    const warnings: string[] = [];
    const writer = await PostgresLedger.open({
      url: db.urlAs(role),
      signingKeyPath: priv,
      onWarning: (m) => warnings.push(m),
      transparency: { origin: ORIGIN, witnesses: [{ url: witness.url, verifier: parseVerifierKey(witness.vkey) }] },
    });
    for (let i = 0; i < 4; i++) await writer.append([makeRecord({ span_id: (0x2000 + i).toString(16).padStart(16, '0') })]);
    await writer.publisher.idle();
    await writer.close();
    expect(warnings).toEqual([]);

    const rows = await adminQuery<{ tree_size: string; note: string | null }>(db.url, 'SELECT tree_size::text, note FROM llm_audit.checkpoints ORDER BY id');
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const row of rows) {
      const r = tlogcheck(work, ['note', vkey, 'n'], { n: row.note! });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.split(' ')[1]).toBe(row.tree_size);
    }
    const cosigned = await adminQuery<{ witness: string }>(db.url, 'SELECT witness FROM llm_audit.cosigned_notes');
    expect(cosigned.length).toBeGreaterThanOrEqual(1);
    expect(cosigned[0]!.witness).toBe(witness.name);
    // Append-only like the other tables.
    await expect(adminQuery(db.url, 'DELETE FROM llm_audit.cosigned_notes')).rejects.toThrow(/append-only|not allowed|reject/i);

    const note = cli(['checkpoint', '--postgres', db.url, '--format', 'note']);
    expect(note.code, note.stderr).toBe(0);
    expect(note.stdout).toMatch(new RegExp(`^${ORIGIN}\\n4\\n\\S+\\n\\n\u2014 ${ORIGIN} \\S+\\n\u2014 witness\\.test/w1 \\S+\\n$`));
    expect(tlogcheck(work, ['note', vkey, 'newest'], { newest: note.stdout }).code).toBe(0);
    const proof = cli(['prove', '--seq', '2', '--postgres', db.url, '--format', 'tlog-proof']);
    expect(tlogcheck(work, ['proof', vkey, 'p'], { p: proof.stdout }).stdout).toMatch(/OK record 2 is in .* at size 4/);
    const verified = cli(['verify', '--postgres', db.url, '--public-key', `${priv}.pub`, '--witness', witness.vkey]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/witnessed: the newest checkpoint carries 1 valid cosignature/);
  });
});
