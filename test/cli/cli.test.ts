import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FileLedger } from '../../src/ledger/file/ledger';
import { readLines, tempDir, writeLines } from '../ledger/helpers';
import { MAIN, cli, ensureBuilt, expectNoStack, ledger } from './cli-helpers';

beforeAll(() => ensureBuilt(), 120_000);

/** Edits the stored line of record `seq`, wherever it is. */
function editSeq(dir: string, seq: number, edit: (line: string) => string): void {
  for (const name of readdirSync(join(dir, 'segments'))) {
    const path = join(dir, 'segments', name);
    const lines = readLines(path);
    const i = lines.findIndex((l) => JSON.parse(l).seq === seq);
    if (i >= 0) {
      lines[i] = edit(lines[i]!);
      writeLines(path, lines);
      return;
    }
  }
  throw new Error(`no seq ${seq}`);
}

describe('llm-audit CLI', () => {
  it('prints help and rejects unknown commands and flags with exit 2', () => {
    const help = cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/usage: llm-audit <command>/);
    expect(cli([]).code).toBe(2);
    const unknown = cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
    const badFlag = cli(['verify', '--nope']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/^llm-audit: LEDGER_USAGE: unknown option --nope$/m);
    expect(cli(['verify', '--help']).stdout).toMatch(/usage: llm-audit verify/);
  });

  it('gives one clear line and exit 3 for a missing, unusable or foreign ledger directory', () => {
    const base = tempDir('cli-');
    const missing = cli(['verify', '--ledger', join(base, 'nope')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr.trim()).toBe(`llm-audit: LEDGER_NOT_FOUND: ledger directory ${join(base, 'nope')} does not exist`);
    expectNoStack(missing);
    writeFileSync(join(base, 'file'), 'x');
    const file = cli(['query', '--ledger', join(base, 'file')]);
    expect(file.code).toBe(3);
    expect(file.stderr).toMatch(/LEDGER_UNREADABLE: .* is not a directory/);
    expect(file.stdout).toBe('');
    const foreign = cli(['report', 'error-rate', '--ledger', base]);
    expect(foreign.code).toBe(3);
    expect(foreign.stderr).toMatch(/is not an llm-audit ledger/);
    // The default directory comes from the environment.
    const env = cli(['verify'], { LLM_AUDIT_LEDGER_DIR: join(base, 'env-dir') });
    expect(env.stderr).toContain(join(base, 'env-dir'));
  });

  it('gives one clear line and exit 3 for a ledger the user may not read (permission denied)', async () => {
    const dir = await ledger({ count: 2 });
    chmodSync(dir, 0o700);
    // As root every file is readable, so the check runs the CLI as an unprivileged user.
    const asRoot = process.getuid?.() === 0;
    if (!asRoot) chmodSync(dir, 0o000);
    const result = asRoot
      ? spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, MAIN, 'verify', '--ledger', dir], { encoding: 'utf8' })
      : spawnSync(process.execPath, [MAIN, 'verify', '--ledger', dir], { encoding: 'utf8' });
    if (!asRoot) chmodSync(dir, 0o700);
    expect(result.error).toBeUndefined();
    expect(result.status).toBe(3);
    expect(result.stderr.trim()).toMatch(/^llm-audit: LEDGER_UNREADABLE: cannot (open|list) the ledger[a-z ]*: permission denied on \/.*ledger$/);
  });

  it('keygen, signed ledger, verify with the public key, then a tampered record exits 1 naming it', async () => {
    const keyDir = tempDir('cli-');
    const key = join(keyDir, 'signing.pem');
    const gen = cli(['keygen', '--out', key]);
    expect(gen.code).toBe(0);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${key}.pub`, 'utf8')).toMatch(/BEGIN PUBLIC KEY/);
    expect(cli(['keygen', '--out', key]).stderr).toMatch(/LEDGER_FILE_EXISTS/);

    const dir = await ledger({ key });
    const ok = cli(['verify', '--ledger', dir, '--public-key', `${key}.pub`]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^OK .*: 10 records verified \(seq 0\.\.9\)/);
    expect(ok.stdout).toMatch(/3 checkpoint roots matched, 3 signatures verified/);
    expect(ok.stderr).toBe('');
    const json = JSON.parse(cli(['verify', '--ledger', dir, '--json']).stdout);
    expect(json).toMatchObject({ ok: true, treeSize: 10 });

    const unsigned = await ledger();
    const warn = cli(['verify', '--ledger', unsigned]);
    expect(warn.code).toBe(0);
    expect(warn.stderr).toMatch(/^warning: 3 checkpoint\(s\) are not signed/m);
    expect(cli(['verify', '--ledger', unsigned, '--public-key', `${key}.pub`]).stderr).toMatch(/LEDGER_CHECKPOINT_UNSIGNED/);

    editSeq(dir, 4, (l) => l.replace('"user_id":"alice"', '"user_id":"alicf"'));
    const bad = cli(['verify', '--ledger', dir, '--public-key', `${key}.pub`]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toMatch(/^llm-audit: LEDGER_RECORD_HASH_MISMATCH: segments\/2026-03-02\.jsonl:3 \(seq 4\): /);
    expectNoStack(bad);

    const checkpoints = join(dir, 'checkpoints.jsonl');
    writeFileSync(checkpoints, readFileSync(checkpoints, 'utf8').replace('"tree_size":8', '"tree_size":9'));
    const forged = cli(['verify', '--ledger', dir, '--public-key', `${key}.pub`]);
    expect(forged.code).toBe(1);
    expect(forged.stderr).toMatch(/LEDGER_SIGNATURE_INVALID: checkpoints\.jsonl:2/);
  });

  it('catches a truncated tail with a checkpoint kept elsewhere (and the checkpoint command)', async () => {
    const dir = await ledger({ count: 10, every: 100 });
    const kept = join(tempDir('cli-'), 'kept.json');
    expect(cli(['checkpoint', '--ledger', dir, '--out', kept]).code).toBe(0);
    expect(JSON.parse(readFileSync(kept, 'utf8'))).toMatchObject({ tree_size: 10 });
    // Truncate the last segment and rewrite checkpoints.jsonl to match: self-consistent...
    const segments = readdirSync(join(dir, 'segments')).sort();
    const last = join(dir, 'segments', segments.at(-1)!);
    // (Records are 7 h apart: the last segment, 2026-03-04, holds only seq 9.)
    writeLines(last, readLines(last).slice(0, -1));
    writeFileSync(join(dir, 'checkpoints.jsonl'), '');
    // (The segment's summary, written on close, still says it holds seq 9: the insider removes it too.)
    expect(cli(['verify', '--ledger', dir]).stderr).toMatch(/LEDGER_SUMMARY_MISMATCH: summaries\/2026-03-04\.jsonl/);
    rmSync(join(dir, 'summaries', segments.at(-1)!));
    expect(cli(['verify', '--ledger', dir]).code).toBe(0);
    // ...but not against the kept checkpoint.
    const result = cli(['verify', '--ledger', dir, '--checkpoint', kept]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^llm-audit: LEDGER_TRUNCATED: segments\/2026-03-03\.jsonl:3 \(seq 8\): the ledger ends here with 9 records, but .*kept\.json \(.*\) says it had 10: 1 record \(seq 9\) was removed from the tail$/m,
    );
  });

  it('prove, verify-proof and consistency', async () => {
    const keyDir = tempDir('cli-');
    const key = join(keyDir, 'k.pem');
    cli(['keygen', '--out', key]);
    const dir = await ledger({ key, every: 3 });
    const proofFile = join(keyDir, 'proof.json');
    const prove = cli(['prove', 'r5', '--ledger', dir, '--out', proofFile]);
    expect(prove.code).toBe(0);
    const checked = cli(['verify-proof', '--proof', proofFile, '--public-key', `${key}.pub`]);
    expect(checked.code).toBe(0);
    expect(checked.stdout).toMatch(/OK: record seq 5 is included in the ledger of size 10 \(signature: verified\)/);
    const proof = JSON.parse(readFileSync(proofFile, 'utf8'));
    proof.entry.record.cost_usd = 0;
    writeFileSync(proofFile, JSON.stringify(proof));
    const bad = cli(['verify-proof', '--proof', proofFile]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/LEDGER_PROOF_INVALID/);
    expect(cli(['prove', 'nope', '--ledger', dir]).code).toBe(4); // no such record

    const cps = readLines(join(dir, 'checkpoints.jsonl'));
    const oldFile = join(keyDir, 'old.json');
    const newFile = join(keyDir, 'new.json');
    writeFileSync(oldFile, cps[0]! + '\n');
    writeFileSync(newFile, cps.at(-1)! + '\n');
    const cons = cli(['consistency', oldFile, newFile, '--ledger', dir, '--public-key', `${key}.pub`]);
    expect(cons.code).toBe(0);
    expect(JSON.parse(cons.stdout)).toMatchObject({ type: 'consistency', old_size: 3, new_size: 10 });
    expect(cons.stderr).toMatch(/OK: the ledger of size 10 \(checkpoint of \S+\) extends the ledger of size 3 \(checkpoint of \S+\): .* \(signature: verified\)/);
    const consFile = join(keyDir, 'cons.json');
    writeFileSync(consFile, cons.stdout);
    expect(cli(['verify-proof', consFile, '--public-key', `${key}.pub`]).code).toBe(0);
    expect(cli(['verify-proof', consFile]).code).toBe(1);
    // A record rewritten in the ledger (history changed after the old checkpoint was taken).
    editSeq(dir, 1, (l) => l.replace('"user_id":"bob"', '"user_id":"eve"'));
    const broken = cli(['consistency', oldFile, newFile, '--ledger', dir]);
    expect(broken.code).toBe(1);
    expectNoStack(broken);
  });

  it('query and report in table, json and csv', async () => {
    const dir = await ledger();
    const table = cli(['query', '--ledger', dir, '--user', 'bob', '--from', '2026-03-01T00:00:00Z', '--to', '2026-03-03T00:00:00Z']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^seq\s+timestamp\s+request_id/);
    expect(table.stdout).toMatch(/r1 /);
    const json = JSON.parse(cli(['query', '--ledger', dir, '--status', 'error', '--format', 'json']).stdout);
    expect(json.map((r: { request_id: string }) => r.request_id)).toEqual(['r0', 'r3', 'r6', 'r9']);
    const csv = cli(['query', '--ledger', dir, '--format', 'csv', '--limit', '2']).stdout.split('\r\n');
    expect(csv[0]).toBe('# llm-audit query --format csv --limit 2 | filter: first 2 | period: first record .. last record | times UTC');
    expect(csv[1]).toBe(
      'seq,timestamp,request_id,user_id,session_id,tenant_id,provider,model_requested,model_response,action,status,input_tokens,output_tokens,cost_usd,latency_ms,error_type,http_status,' +
        'trace_id,span_id,operation,cache_read_tokens,cache_creation_tokens,reasoning_tokens,error_message,system_prompt_hash,input_hash,output_hash,' +
        'sanitization_count,sanitization_mode,sanitization_kinds,guardrails,block_reason,tools,rag_document_ids,metadata,content_encrypted,http_request,' +
        'service_name,service_namespace,service_version,service_instance_id,deployment_environment,client_address,user_agent,event_outcome,event_target,event_reason,event_reason_hash,event_details,has_content,has_errors,record_version',
    );
    expect(csv).toHaveLength(5);
    expect(cli(['query', '--ledger', dir, '--from', 'yesterday']).code).toBe(2);
    expect(cli(['query', '--ledger', dir, '--format', 'xml']).stderr).toMatch(/--format must be one of table, json, csv/);

    // Records every 7 h from 2026-03-01T10:00Z: in the 24 h before 2026-03-03T12:00Z are r4 (03-02T14:00),
    // r5 (03-02T21:00), r6 (03-03T04:00, an error: i % 3 == 0) and r7 (03-03T11:00): 1 error in 4.
    const rate = JSON.parse(cli(['report', 'error-rate', '--ledger', dir, '--now', '2026-03-03T12:00:00Z', '--format', 'json']).stdout);
    expect(rate).toEqual([{ model: 'gpt-4o', response_models: 'gpt-4o-2024-08-06', requests: 4, errors: 1, blocked: 0, error_rate: 0.25 }]);
    const cost = cli(['report', 'cost-by-user', '--ledger', dir, '--format', 'csv']).stdout;
    // 03-01: r0 (10:00) alice, r1 (17:00) bob; 03-02: r2 00:00 alice, r3 07:00 bob, r4 14:00 alice, r5 21:00 bob ...
    expect(cost.split('\r\n').slice(1, 5)).toEqual([
      'day,user_id,requests,total_cost_usd,unpriced_requests,avg_latency_ms',
      '2026-03-01,alice,1,0.5,0,100',
      '2026-03-01,bob,1,0.5,0,100',
      '2026-03-02,alice,2,1,0,100',
    ]);
    const anomalies = cli(['report', 'anomalies', '--ledger', dir, '--now', '2026-03-04T00:00:00Z']);
    expect(anomalies.code).toBe(0);
    expect(anomalies.stdout).toMatch(/\(no rows\)/);
    expect(cli(['report', 'nope', '--ledger', dir]).code).toBe(2);
  });

  it('retention apply keeps the ledger verifiable', async () => {
    const dir = await ledger();
    // gdpr 30d on 2026-04-02T00:00Z: 03-01 (r0, r1) and 03-02 (r2..r5, newest 21:00 + 30 d = 04-01T21:00)
    // have expired; 03-03's newest (18:00 + 30 d) has not.
    const dry = cli(['retention', 'apply', '--policy', 'gdpr', '--max-age', '30d', '--now', '2026-04-02T00:00:00Z', '--dry-run', '--ledger', dir]);
    expect(dry.code).toBe(0);
    expect(dry.stderr).toMatch(/dry run .* would remove 2 segment\(s\), 6 record\(s\); nothing was changed/);
    expect(readdirSync(join(dir, 'segments'))).toHaveLength(4);
    expect(dry.stdout).toMatch(/2026-03-02\.jsonl\s+4\s+2\s+5\s+\S+\s+2026-04-01T21:00:00\.000Z\s+remove/);
    const applied = cli(['retention', 'apply', '--policy', 'gdpr', '--max-age', '30d', '--now', '2026-04-02T00:00:00Z', '--ledger', dir]);
    expect(applied.code).toBe(0);
    expect(applied.stderr).toMatch(/removed 2 segment\(s\), 6 record\(s\); tombstone at tree size 6/);
    expect(applied.stderr).toMatch(/warning: the tombstone is not signed/);
    const verify = cli(['verify', '--ledger', dir]);
    expect(verify.code).toBe(0);
    // The 4 kept records and the retention.policy record written before the deletion.
    expect(applied.stderr).toMatch(/recorded in the ledger in .*: the retention policy in force is now gdpr \(metadata 30d, content 30d, errors 30d\)/);
    expect(verify.stdout).toMatch(/5 records verified \(seq 6\.\.10\), tree size 11/);
    expect(verify.stdout).toMatch(/6 earlier records were removed by retention/);
    expect(cli(['retention', 'apply', '--policy', 'forever', '--ledger', dir]).code).toBe(2);
    expect(cli(['retention', 'apply', '--policy', 'gdpr', '--now', '2999-01-01T00:00:00Z', '--ledger', dir]).stderr).toMatch(/in the future/);
  });

  it('repair quarantines a torn tail, after which verify passes with a note', async () => {
    const dir = await ledger();
    const segments = readdirSync(join(dir, 'segments')).sort();
    appendFileSync(join(dir, 'segments', segments.at(-1)!), '{"prev":"12');
    const torn = cli(['verify', '--ledger', dir]);
    expect(torn.code).toBe(1);
    expect(torn.stderr).toMatch(/LEDGER_TORN_TAIL: segments\/.*\.jsonl:\d+: incomplete record \(11 bytes with no newline\) at the end/);
    expect(torn.stderr).toMatch(/llm-audit repair --ledger/);
    const query = cli(['query', '--ledger', dir, '--format', 'json']);
    expect(query.code).toBe(0);
    expect(query.stderr).toMatch(/incomplete line/);
    const repair = cli(['repair', '--ledger', dir]);
    expect(repair.code).toBe(0);
    expect(repair.stdout).toMatch(/moved 11 torn bytes .* to quarantine\//);
    const ok = cli(['verify', '--ledger', dir]);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/note: repair on .*: 11 torn bytes/);
  });

  it('reports a full disk as one line with exit 3', async () => {
    const dir = await ledger();
    const full = cli(['checkpoint', '--ledger', dir, '--out', '/dev/full']);
    expect(full.code).toBe(3);
    expect(full.stderr.trim()).toBe('llm-audit: LEDGER_NO_SPACE: cannot write: no space left on the device holding /dev/full');
  });

  it('refuses a second writer process, and takes over after it dies', async () => {
    const dir = await ledger();
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const { FileLedger } = require(${JSON.stringify(join(MAIN, '../../ledger/file/ledger.js'))});
         FileLedger.open({ dir: ${JSON.stringify(dir)} }).then(() => { console.log('locked'); setInterval(() => {}, 1000); });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const refused = cli(['repair', '--ledger', dir]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(new RegExp(`LEDGER_LOCKED: .* is locked by process ${child.pid} on .*only one process may repair a ledger at a time`));
    await expect(FileLedger.open({ dir })).rejects.toMatchObject({ code: 'LEDGER_LOCKED' });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const after = await FileLedger.open({ dir, fsync: 'none' });
    expect(after.notices.join()).toMatch(new RegExp(`stale lock of process ${child.pid}`));
    await after.close();
  });
});
