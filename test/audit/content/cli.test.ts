import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { contentPayload, createContentCipher, loadContentMasterKey, masterKeyFromBytes } from '../../../src/audit/content';
import { FileLedger, FileLedgerSource } from '../../../src/ledger/file/ledger';
import { scanRecords } from '../../../src/ledger/query';
import type { LedgerRecord } from '../../../src/ledger/record';
import { makeRecord } from '../../ledger/helpers';
import { cli, expectNoStack, type CliResult } from '../../cli/cli-helpers';
import { ensureBuiltWithContent, tempDir } from './helpers';
import { chatRequest } from '../../../src/instrumentations/openai/request';

const CANARY = 'CANARY-cli-5d1e';

beforeAll(() => ensureBuiltWithContent(), 120_000);

/** Every failure is exactly one `llm-audit: CODE: message` line with the expected code, and no stack. */
function expectError(result: CliResult, exit: number, code: string): void {
  expectNoStack(result);
  expect(result.code, result.stderr).toBe(exit);
  const lines = result.stderr.trim().split('\n');
  expect(lines[0]).toMatch(new RegExp(`^llm-audit: ${code}: `));
}

interface Fixture {
  dir: string;
  ledger: string;
  key: string;
}

/** A content key made by the CLI, and a ledger whose records carry envelopes sealed with it. */
async function fixture(): Promise<Fixture> {
  const dir = tempDir('content-cli-');
  const key = join(dir, 'keys', 'content.json');
  const made = cli(['content-key', '--out', key, '--key-id', 'ck-test']);
  expect(made.code, made.stderr).toBe(0);
  expect(made.stdout).toContain('key id ck-test');

  const cipher = createContentCipher({ masterKey: loadContentMasterKey(key), keystorePath: join(dir, 'keys', 'content-keystore.jsonl') });
  const seal = (requestId: string, tenantId: string | null, text: string) =>
    cipher.seal(
      contentPayload(
        chatRequest,
        {
          messages: [
            { role: 'system', content: 'You are a bank assistant.' },
            { role: 'user', content: text },
            { role: 'assistant', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'balance', arguments: '{"account":"FR76"}' } }] },
            { role: 'tool', tool_call_id: 'call_1', content: '{"balance":12}' },
          ],
        },
        [{ role: 'assistant', parts: [{ type: 'text', content: `Your balance is 12. ${CANARY}` }], finish_reason: 'stop' }],
      ),
      { requestId, tenantId },
    );
  const acme = seal('req-acme', 'acme', `What is my balance? ${CANARY}`);
  const records: Array<LedgerRecord & { content: string | null }> = [
    { ...makeRecord({ request_id: 'req-acme', tenant_id: 'acme' }), content: acme },
    { ...makeRecord({ request_id: 'req-globex', tenant_id: 'globex' }), content: seal('req-globex', 'globex', `globex question ${CANARY}`) },
    { ...makeRecord({ request_id: 'req-none', tenant_id: null }), content: null },
    // The acme envelope copied into another record.
    { ...makeRecord({ request_id: 'req-moved', tenant_id: 'acme' }), content: acme },
    { ...makeRecord({ request_id: 'req-escape', tenant_id: null }), content: seal('req-escape', null, 'clear screen \u001b[2J and \u202e reversed') },
  ];
  const ledger = join(dir, 'ledger');
  const writer = await FileLedger.open({ dir: ledger, fsync: 'none' });
  // The record type gains `content` in the lead's change; until then the extra member is cast in.
  await writer.append(records as unknown as LedgerRecord[]);
  await writer.close();
  return { dir, ledger, key };
}

describe('llm-audit content-key', () => {
  it('writes a 0600 key file once, and refuses to overwrite it or to run without --out', () => {
    const dir = tempDir('content-cli-');
    const out = join(dir, 'k.json');
    const first = cli(['content-key', '--out', out]);
    expect(first.code, first.stderr).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const doc = JSON.parse(readFileSync(out, 'utf8')) as { llm_audit_content_key: number; kid: string; key: string };
    expect(doc.llm_audit_content_key).toBe(1);
    expect(Buffer.from(doc.key, 'base64')).toHaveLength(32);
    expect(first.stdout).toContain(`key id ${doc.kid}`);
    expect(first.stdout).not.toContain(doc.key);

    expectError(cli(['content-key', '--out', out]), 3, 'CONTENT_FILE_EXISTS');
    expectError(cli(['content-key']), 2, 'LEDGER_USAGE');
    expectError(cli(['content-key', '--out', join(dir, 'x'), '--key-id', 'no spaces']), 2, 'LEDGER_USAGE');
  });
});

describe('llm-audit decrypt', () => {
  it('shows the content of a record to a reviewer with the key, as text or JSON', async () => {
    const f = await fixture();
    const text = cli(['decrypt', '--reason', 'review', 'req-acme', '--ledger', f.ledger, '--key', f.key]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('request_id  req-acme');
    expect(text.stdout).toContain('tenant      acme');
    // The system message is the system prompt (what llm_audit.system_prompt.hash covers).
    expect(text.stdout).toContain('== system instructions ==\n    You are a bank assistant.');
    expect(text.stdout).toContain('== input messages (3) ==');
    expect(text.stdout).toContain(`What is my balance? ${CANARY}`);
    expect(text.stdout).toContain('[tool call call_1] balance({"account":"FR76"})');
    expect(text.stdout).toContain('[tool result call_1]');
    expect(text.stdout).toContain('== output messages (1) ==');
    expect(text.stdout).toContain('(finish: stop)');

    const json = cli(['decrypt', '--reason', 'review', 'req-acme', '--ledger', f.ledger, '--key', f.key, '--format', 'json']);
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout) as { request_id: string; tenant_id: string; kid: string; content: { system_instructions?: unknown[]; input_messages: unknown[]; output_messages: unknown[] } };
    expect(doc).toMatchObject({ request_id: 'req-acme', tenant_id: 'acme', kid: 'ck-test' });
    expect(doc.content.input_messages).toHaveLength(3);
    expect(doc.content.system_instructions).toEqual([{ type: 'text', content: 'You are a bank assistant.' }]);
    expect(doc.content.output_messages).toEqual([{ role: 'assistant', parts: [{ type: 'text', content: `Your balance is 12. ${CANARY}` }], finish_reason: 'stop' }]);

    // The same from the environment variables the application uses.
    const fromEnv = cli(['decrypt', '--reason', 'review', 'req-globex', '--format', 'json'], { LLM_AUDIT_LEDGER_DIR: f.ledger, LLM_AUDIT_CONTENT_KEY: f.key });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(fromEnv.stdout).toContain(`globex question ${CANARY}`);
  });

  it('shows control characters and bidi overrides escaped in text output', async () => {
    const f = await fixture();
    const result = cli(['decrypt', '--reason', 'review', 'req-escape', '--ledger', f.ledger, '--key', f.key]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).not.toContain('\u001b');
    expect(result.stdout).not.toContain('\u202e');
    expect(result.stdout).toContain('clear screen \\u001b[2J and \\u202e reversed');
  });

  it('exits 1 for a moved or altered envelope, 3 when it cannot show the content, 2 for usage errors; never a stack trace', async () => {
    const f = await fixture();
    expectError(cli(['decrypt', '--reason', 'review', 'req-moved', '--ledger', f.ledger, '--key', f.key]), 1, 'CONTENT_TAMPERED');
    expectError(cli(['decrypt', '--reason', 'review', 'req-none', '--ledger', f.ledger, '--key', f.key]), 3, 'CONTENT_NOT_CAPTURED');
    expectError(cli(['decrypt', '--reason', 'review', 'req-unknown', '--ledger', f.ledger, '--key', f.key]), 4, 'LEDGER_RECORD_NOT_FOUND');
    expectError(cli(['decrypt', '--reason', 'review', 'req-acme', '--ledger', f.ledger]), 3, 'CONTENT_KEY_MISSING');
    expectError(cli(['decrypt', '--reason', 'review', 'req-acme', '--ledger', f.ledger, '--key', join(f.dir, 'absent.json')]), 3, 'CONTENT_KEY_MISSING');
    expectError(cli(['decrypt', '--reason', 'review', 'req-acme', '--ledger', f.ledger, '--key', f.key, '--keystore', join(f.dir, 'nope.jsonl')]), 3, 'CONTENT_KEYSTORE_NOT_FOUND');
    expectError(cli(['decrypt', '--reason', 'review', 'req-acme', '--ledger', join(f.dir, 'no-ledger'), '--key', f.key]), 3, 'LEDGER_NOT_FOUND');
    expectError(cli(['decrypt', '--reason', 'review', '--ledger', f.ledger, '--key', f.key]), 2, 'LEDGER_USAGE');
    expectError(cli(['decrypt', '--reason', 'review', 'req-acme', '--format', 'yaml', '--key', f.key]), 2, 'LEDGER_USAGE');

    // A key file with the right id but the wrong bytes.
    const impostor = join(f.dir, 'impostor.json');
    const real = JSON.parse(readFileSync(f.key, 'utf8')) as Record<string, unknown>;
    require('node:fs').writeFileSync(impostor, JSON.stringify({ ...real, key: Buffer.alloc(32, 9).toString('base64') }));
    const wrong = cli(['decrypt', '--reason', 'review', 'req-acme', '--ledger', f.ledger, '--key', impostor, '--keystore', join(f.dir, 'keys', 'content-keystore.jsonl')]);
    expectError(wrong, 3, 'CONTENT_KEY_INVALID');
    expect(masterKeyFromBytes(Buffer.alloc(32, 9), 'ck-test').kid).toBe('ck-test');
  });
});

describe('llm-audit shred', () => {
  it('refuses without --yes, then destroys one tenant: its records no longer decrypt, others do, and the ledger still verifies', async () => {
    const f = await fixture();
    const refused = cli(['shred', '--tenant', 'acme', '--key', f.key]);
    expectError(refused, 2, 'CONTENT_USAGE');
    expect(cli(['decrypt', '--reason', 'review', 'req-acme', '--ledger', f.ledger, '--key', f.key]).code).toBe(0);

    const done = cli(['shred', '--tenant', 'acme', '--key', f.key, '--yes', '--reason', 'erasure request #7']);
    expect(done.code, done.stderr).toBe(0);
    expectNoStack(done);
    expect(done.stdout).toMatch(/^shredded tenant "acme": destroyed 1 data key \([0-9a-f]{24}\)/);

    expectError(cli(['decrypt', '--reason', 'review', 'req-acme', '--ledger', f.ledger, '--key', f.key]), 3, 'CONTENT_KEY_SHREDDED');
    expect(cli(['decrypt', '--reason', 'review', 'req-globex', '--ledger', f.ledger, '--key', f.key]).code).toBe(0);
    const verify = cli(['verify', '--ledger', f.ledger]);
    expect(verify.code, verify.stderr).toBe(0);

    const log = readFileSync(join(f.dir, 'keys', 'shredded.jsonl'), 'utf8').trim().split('\n');
    expect(log).toHaveLength(1);
    expect(JSON.parse(log[0]!)).toMatchObject({ type: 'content.shred', tenant: 'acme', reason: 'erasure request #7' });

    // Again, as JSON, with the keystore given directly: nothing left to destroy.
    const again = cli(['shred', '--tenant', 'acme', '--keystore', join(f.dir, 'keys', 'content-keystore.jsonl'), '--yes', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ v: 1, type: 'content.shred', tenant: 'acme', deks: [] });
  });

  it('with --ledger: the shred is chained as a record of action content.shred; a ledger it cannot write stops it before anything is destroyed', async () => {
    const f = await fixture();
    const shred = (...extra: string[]) => cli(['shred', '--tenant', 'acme', '--key', f.key, '--yes', '--reason', 'erasure request #9', ...extra]);
    const intact = () => cli(['decrypt', '--reason', 'review', 'req-acme', '--ledger', f.ledger, '--key', f.key]).code === 0;

    // No ledger there (a typo): refused, nothing created, nothing destroyed.
    const typo = join(f.dir, 'ledgr');
    expectError(shred('--ledger', typo), 3, 'LEDGER_NOT_FOUND');
    expect(existsSync(typo)).toBe(false);
    // The application's writer holds the ledger: refused, nothing destroyed.
    const writer = await FileLedger.open({ dir: f.ledger, fsync: 'none' });
    const locked = shred('--ledger', f.ledger);
    await writer.close();
    expectError(locked, 3, 'LEDGER_LOCKED');
    expect(intact()).toBe(true);
    expect(existsSync(join(f.dir, 'keys', 'shredded.jsonl'))).toBe(false);

    const before = JSON.parse(cli(['report', 'cost-by-user', '--ledger', f.ledger, '--format', 'json']).stdout);
    const done = shred('--ledger', f.ledger);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain(`recorded in shredded.jsonl and the ledger in ${f.ledger}`);
    expect(intact()).toBe(false);

    const found = JSON.parse(cli(['query', '--action', 'content.shred', '--ledger', f.ledger, '--format', 'json']).stdout);
    expect(found).toHaveLength(1);
    // seq 5 and 6: the audit.read records of the two decrypts above (intact()).
    expect(found[0]).toMatchObject({ seq: 7, tenant_id: 'acme', action: 'content.shred', status: 'success', model_requested: null, model_response: null, cost_usd: null });
    const { deks } = JSON.parse(readFileSync(join(f.dir, 'keys', 'shredded.jsonl'), 'utf8').trim());
    const records = [];
    for await (const hit of scanRecords(new FileLedgerSource(f.ledger))) records.push(hit.record);
    // The shred, then the audit.read record of the query that found it.
    expect(records.at(-2)!.metadata).toMatchObject({ reason: 'erasure request #9', data_key_ids: deks, keystore: join(f.dir, 'keys', 'content-keystore.jsonl') });
    expect(deks).toHaveLength(1);
    // Chained with the calls, and left out of the call reports.
    const verify = cli(['verify', '--ledger', f.ledger]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(cli(['report', 'cost-by-user', '--ledger', f.ledger, '--format', 'json']).stdout)).toEqual(before);
    expect(cli(['query', '--tenant', 'acme', '--ledger', f.ledger, '--format', 'json']).stdout).toContain('content.shred');

    // Without a ledger it says that the shred is not chained.
    const unchained = cli(['shred', '--tenant', 'globex', '--key', f.key, '--yes']);
    expect(unchained.code, unchained.stderr).toBe(0);
    expect(unchained.stderr).toContain('not recorded in an audit ledger');
  });

  it('usage and unusable keystore errors', async () => {
    const dir = tempDir('content-cli-');
    expectError(cli(['shred', '--yes', '--keystore', join(dir, 'k.jsonl')]), 2, 'LEDGER_USAGE');
    expectError(cli(['shred', '--tenant', 'a', '--yes']), 2, 'LEDGER_USAGE');
    expectError(cli(['shred', '--tenant', 'a', '--yes', '--keystore', join(dir, 'missing.jsonl')]), 3, 'CONTENT_KEYSTORE_NOT_FOUND');
    const help = cli(['shred', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('llm-audit shred --tenant T');
  });
});
