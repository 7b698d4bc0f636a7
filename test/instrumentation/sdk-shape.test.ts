import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { LlmAuditUnavailableError, setOnFailurePolicy } from '../../src/audit/failure-policy';
import { auditClient } from '../../src/core/audit-client';
import { expectedText, type FakeProvider } from '../support/fake-provider';
import { setupAudit, useFakeProvider } from '../support/harness';
import { fakeOpenaiMajor, withoutChatClass } from '../support/next-major';

// Whether an SDK is audited depends on its shape, not its version number (src/core/provider.ts).
// A fake "next major" is the real openai package copied with its version changed to 99.0.0: once as
// is (its shape matches: audited), once without the static `OpenAI.Chat` class the patch reaches
// `chat.completions.create` through (its shape does not match: one warning on stderr, calls pass
// through unharmed). Both are loaded through the require hook, from their own node_modules.

const audit = setupAudit();
const fakeProvider = useFakeProvider(audit);
let fake: FakeProvider;
let dir: string;

let matching: string;
let changed: string;
beforeAll(() => {
  fake = fakeProvider();
  dir = mkdtempSync(join(tmpdir(), 'llm-audit-next-major-'));
  matching = fakeOpenaiMajor(join(dir, 'matching'), '99.0.0');
  changed = fakeOpenaiMajor(join(dir, 'changed'), '99.0.0', withoutChatClass);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let stderr: string[] = [];
let restoreStderr: (() => void) | undefined;
function captureStderr(): void {
  stderr = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: any) => {
    stderr.push(String(chunk));
    return true;
  });
  restoreStderr = () => spy.mockRestore();
}
afterEach(() => {
  restoreStderr?.();
  restoreStderr = undefined;
  setOnFailurePolicy('continue');
});

const ask = (OpenAI: any) =>
  new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL, maxRetries: 0 }).chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'hi' }],
  });

describe('an SDK version outside the tested range', () => {
  it('openai 99.0.0 with the shape the patch needs is audited, without a warning', async () => {
    captureStderr();
    const sdk = audit.load('openai', matching);
    expect(JSON.parse(readFileSync(join(matching, 'node_modules', 'openai', 'package.json'), 'utf8')).version).toBe('99.0.0');
    const result = await ask(sdk.OpenAI);
    expect(result.choices[0].message.content).toBe(expectedText());
    const [span] = await audit.spansWhen(1);
    expect(span.attributes['llm_audit.status']).toBe('success');
    expect(span.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
    expect(stderr.join('')).not.toContain('NOT audited');
  });

  it('openai 99.0.0 without that shape: one stderr warning naming it, calls pass through unaudited', async () => {
    captureStderr();
    const sdk = audit.load('openai', changed);
    expect(sdk.OpenAI.Chat).toBeUndefined();
    const result = await ask(sdk.OpenAI);
    expect(result.choices[0].message.content).toBe(expectedText());
    // Loaded again (a second require of the same version, e.g. through auditClient()): still one warning.
    auditClient(new sdk.OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseURL }));
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(audit.spans()).toHaveLength(0);
    const warnings = stderr.filter((line) => line.includes('NOT audited'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('openai 99.0.0 lacks what the audit wraps (OpenAI.Chat.Completions.prototype.create)');
  });

  it('LLM_AUDIT_ON_FAILURE=block: loading an SDK that cannot be audited is an error that says why', () => {
    setOnFailurePolicy('block');
    const blocked = fakeOpenaiMajor(join(dir, 'blocked'), '99.0.0', withoutChatClass);
    let error: unknown;
    try {
      audit.load('openai', blocked);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LlmAuditUnavailableError);
    expect(String((error as Error).message)).toMatch(/openai 99\.0\.0 lacks what the audit wraps .*NOT audited.*LLM_AUDIT_ON_FAILURE=block refuses to load/);
  });
});
