/**
 * `llm-audit hash --messages FILE` against the hashes the instrumentation recorded for real SDK
 * calls (openai and @anthropic-ai/sdk against the local fake provider), and `--request-id`
 * against a ledger holding those records.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLedger } from '../../src/ledger/file/ledger';
import { recordFromSpan } from '../../src/ledger/record';
import * as A from '../../src/semconv';
import { setupAudit, useFakeProvider } from '../support/harness';
import { cli, ensureBuilt } from './cli-helpers';

// The harness's key, given to the CLI the way an operator gives it to the instrumentation.
const audit = setupAudit({ hashKey: 'incident-hash-key-0123456789', hashKeyId: 'k2026' });
const KEY_ENV = { LLM_AUDIT_HASH_KEY: 'incident-hash-key-0123456789', LLM_AUDIT_HASH_KEY_ID: 'k2026' };
const fake = useFakeProvider(audit);
let dir: string;

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'hash-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MESSAGES = [
  { role: 'system', content: 'You are the claims assistant of ACME Insurance.' },
  { role: 'user', content: 'Is water damage from a burst pipe covered? Policy 88-1201.' },
];

function file(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value, null, 2));
  return path;
}

describe('llm-audit hash', () => {
  it('recomputes the input and system prompt hashes an openai call recorded, from the message list or the whole request', async () => {
    const OpenAI = audit.load('openai').OpenAI;
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: fake().openaiBaseURL, maxRetries: 0 });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: MESSAGES, temperature: 0 });
    const [span] = await audit.spansWhen(1);
    const recorded = { input: span!.attributes[A.ATTR_AUDIT_INPUT_HASH], system: span!.attributes[A.ATTR_AUDIT_SYSTEM_PROMPT_HASH] };
    expect(recorded.input).toMatch(/^hmac-sha256:k2026:[0-9a-f]{64}$/);

    const fromList = cli(['hash', '--messages', file('messages.json', MESSAGES), '--format', 'json'], KEY_ENV);
    expect(fromList.code, fromList.stderr).toBe(0);
    const out = JSON.parse(fromList.stdout);
    expect(out).toMatchObject({ action: 'chat.completions.create', key_id: 'k2026' });
    expect(out.hashes).toEqual([
      { field: 'system_prompt_hash', computed: recorded.system },
      { field: 'input_hash', computed: recorded.input },
    ]);
    // The whole request body gives the same hashes: only the prompt counts.
    const fromBody = cli(['hash', '--messages', file('request.json', { model: 'gpt-4o-mini', messages: MESSAGES, temperature: 0 })], KEY_ENV);
    expect(fromBody.stdout).toContain(String(recorded.input));
    // One character changed, or another key: another hash.
    const edited = structuredClone(MESSAGES);
    edited[1]!.content = edited[1]!.content.replace('88-1201', '88-1202');
    expect(cli(['hash', '--messages', file('edited.json', edited)], KEY_ENV).stdout).not.toContain(String(recorded.input));
    const otherKey = cli(['hash', '--messages', file('messages.json', MESSAGES)], { LLM_AUDIT_HASH_KEY: 'another-key-0123456789abcdef' });
    expect(otherKey.stdout).not.toContain(String(recorded.input));
  });

  it('--request-id compares with the record: MATCH exits 0, DIFFERENT exits 1; the action comes from the record', async () => {
    const Anthropic = audit.load('@anthropic-ai/sdk').Anthropic;
    const client = new Anthropic({ apiKey: 'sk-ant-test', baseURL: fake().anthropicBaseURL, maxRetries: 0 });
    const messages = [{ role: 'user', content: 'Summarise claim 4471 for the adjuster.' }];
    await client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 64, system: 'Be brief.', messages });
    const [span] = await audit.spansWhen(1);
    const record = recordFromSpan(span!)!;
    const ledgerDir = join(dir, 'ledger');
    const ledger = await FileLedger.open({ dir: ledgerDir, fsync: 'none' });
    await ledger.append([record]);
    await ledger.close();

    const same = cli(['hash', '--messages', file('claim.json', messages), '--request-id', record.request_id!, '--ledger', ledgerDir], KEY_ENV);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stderr).toContain(`MATCH: this input is the one recorded for request ${record.request_id} (messages.create)`);
    expect(same.stdout).toMatch(/^input_hash\s+hmac-sha256:k2026:[0-9a-f]{64}\s+hmac-sha256:k2026:[0-9a-f]{64}\s+true$/m);

    const other = cli(['hash', '--messages', file('claim2.json', [{ role: 'user', content: 'Summarise claim 4472 for the adjuster.' }]), '--request-id', record.request_id!, '--ledger', ledgerDir], KEY_ENV);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain(`DIFFERENT: this input is not the one recorded for request ${record.request_id}`);
    const missing = cli(['hash', '--messages', file('claim.json', messages), '--request-id', 'nope', '--ledger', ledgerDir], KEY_ENV);
    expect(missing.code).toBe(4);
    expect(cli(['hash', '--messages', join(dir, 'absent.json')], KEY_ENV).code).toBe(3);
    expect(cli(['hash', '--messages', file('claim.json', messages), '--action', 'nope'], KEY_ENV).code).toBe(2);
    // Vercel ai's prompt list: system messages apart, the rest is the input, as for the SDKs.
    const vercel = JSON.parse(cli(['hash', '--messages', file('vercel.json', [{ role: 'system', content: 'Be brief.' }, ...messages]), '--action', 'generateText', '--format', 'json'], KEY_ENV).stdout);
    expect(vercel.hashes[1]).toEqual({ field: 'input_hash', computed: record.input_hash });
  });
});
