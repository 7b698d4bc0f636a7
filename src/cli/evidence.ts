/** `llm-audit evidence`: write a compliance evidence bundle; `llm-audit evidence verify`: check one offline. */
import { existsSync, readdirSync } from 'node:fs';
import { buildEvidence, verifyEvidence } from '../evidence/bundle';
import { FRAMEWORKS, type Framework } from '../evidence/frameworks';
import { loadPrivateKey, loadPublicKey } from '../ledger/checkpoint';
import { EXIT, LedgerError } from '../ledger/errors';
import { READ_AUDIT_OPTIONS, READ_AUDIT_USAGE, ReadAudit, filterDetails } from './audit-read';
import { flag, instant, oneOf, parse, str, type CliIo } from './io';
import { POSTGRES_OPTION, withSource } from './source';

export const EVIDENCE_USAGE =
  `llm-audit evidence --framework ${FRAMEWORKS.join('|')} --from DATE [--to DATE] --out DIR [--ledger DIR | --postgres URL]\n` +
  `                   [--previous DIR] [--public-key FILE] [--signing-key FILE] ${READ_AUDIT_USAGE}\n` +
  'llm-audit evidence verify DIR [--public-key FILE] [--previous DIR] [--allow-unsigned]\n' +
  '  --from, --to        the period (ISO 8601; --to defaults to now, and is excluded)\n' +
  '  --out DIR           a new or empty directory for the bundle (report.html, evidence.json, checkpoint.json,\n' +
  '                      proofs/, consistency.json, manifest.json, manifest.sig.json)\n' +
  "  --previous DIR      the previous bundle: adds a proof that the ledger only grew since its checkpoint\n" +
  '  --public-key FILE   check the ledger\'s and the bundle\'s signatures with it (default $LLM_AUDIT_PUBLIC_KEY)\n' +
  '  --signing-key FILE  sign the manifest (default $LLM_AUDIT_SIGNING_KEY, the ledger\'s checkpoint key)\n' +
  '  --allow-unsigned    verify: accept a bundle whose signatures were not checked (nothing is then proven about who made it)\n' +
  'example:\n' +
  '  llm-audit evidence --framework eu-ai-act --from 2026-07-01 --to 2026-10-01 --out q3-evidence --public-key ledger.pub\n' +
  '  llm-audit evidence verify q3-evidence --public-key ledger.pub --previous q2-evidence';

export async function evidenceCommand(argv: string[], io: CliIo): Promise<number> {
  if (argv[0] === 'verify') return verifyCommand(argv.slice(1), io);
  const p = parse(
    argv,
    {
      framework: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      out: { type: 'string' },
      ledger: { type: 'string' },
      previous: { type: 'string' },
      'public-key': { type: 'string' },
      ...READ_AUDIT_OPTIONS,
      ...POSTGRES_OPTION,
    },
    EVIDENCE_USAGE,
  );
  const framework = str(p, 'framework');
  if (framework === undefined) throw new LedgerError('LEDGER_USAGE', `--framework is required (${FRAMEWORKS.join(', ')})\nusage: ${EVIDENCE_USAGE}`);
  oneOf(framework, FRAMEWORKS, '--framework', 'eu-ai-act');
  const from = instant(str(p, 'from'), '--from');
  if (from === undefined) throw new LedgerError('LEDGER_USAGE', `--from is required: the start of the period\nusage: ${EVIDENCE_USAGE}`);
  const to = instant(str(p, 'to'), '--to') ?? Date.now();
  if (!(to > from)) throw new LedgerError('LEDGER_USAGE', '--to must be after --from');
  const out = str(p, 'out');
  if (out === undefined) throw new LedgerError('LEDGER_USAGE', `--out DIR is required\nusage: ${EVIDENCE_USAGE}`);
  if (existsSync(out) && readdirSync(out).length > 0) throw new LedgerError('LEDGER_FILE_EXISTS', `${out} is not empty: a bundle is written into a new or empty directory`);
  const publicKey = keyFrom(str(p, 'public-key') ?? io.env.LLM_AUDIT_PUBLIC_KEY, loadPublicKey);
  const signingKey = keyFrom(str(p, 'signing-key') ?? io.env.LLM_AUDIT_SIGNING_KEY, loadPrivateKey);
  const previous = str(p, 'previous');
  const audit = await ReadAudit.prepare(p, io);
  audit.unrecordedNotice('evidence');
  const result = await withSource(p, io, (source) =>
    buildEvidence(source, {
      framework: framework as Framework,
      from,
      to,
      out,
      ...(signingKey ? { signingKey } : {}),
      ...(previous !== undefined ? { previous } : {}),
      verify: publicKey ? { publicKey } : {},
    }),
  );
  const v = result.facts.ledger.verify;
  await io.out(
    `wrote ${out}: ${result.files.length} files, ${result.sampled} inclusion proof${result.sampled === 1 ? '' : 's'}` +
      `${previous !== undefined ? `, consistency from ${previous}` : ''}, manifest ${result.signed ? 'signed' : 'NOT signed (no signing key)'}\n` +
      `period ${result.facts.period.from} to ${result.facts.period.to}: ${result.facts.records.calls} calls; ledger ${v.ok ? 'verified' : `FAILED verification (${v.code})`}\n` +
      result.requirements.map((r) => `  ${r.status.padEnd(6)}  ${r.cite}  ${r.title}\n`).join('') +
      `open ${out}/report.html; check the bundle with: llm-audit evidence verify ${out}${publicKey ? ' --public-key KEY' : ''}\n`,
  );
  if (!publicKey) io.err('warning: no --public-key: the ledger\'s signatures were not checked, and the report says so');
  await audit.recordAfter({
    command: 'evidence',
    tenantId: null,
    details: { framework, ...filterDetails({ from, to }), out, records: result.facts.records.calls },
  });
  return v.ok ? EXIT.ok : EXIT.integrity;
}

function keyFrom<T>(path: string | undefined, load: (path: string) => T): T | undefined {
  const trimmed = path?.trim();
  return trimmed ? load(trimmed) : undefined;
}

async function verifyCommand(argv: string[], io: CliIo): Promise<number> {
  const p = parse(argv, { 'public-key': { type: 'string' }, previous: { type: 'string' }, 'allow-unsigned': { type: 'boolean' } }, EVIDENCE_USAGE, 1);
  const dir = p.positionals[0];
  if (dir === undefined) throw new LedgerError('LEDGER_USAGE', `name the bundle directory\nusage: ${EVIDENCE_USAGE}`);
  const publicKey = keyFrom(str(p, 'public-key') ?? io.env.LLM_AUDIT_PUBLIC_KEY, loadPublicKey);
  const previous = str(p, 'previous');
  const check = verifyEvidence(dir, { ...(publicKey ? { publicKey } : {}), ...(previous !== undefined ? { previous } : {}) });
  const what =
    `${check.files} files match the manifest, ${check.inclusionProofs} inclusion proof${check.inclusionProofs === 1 ? '' : 's'} lead to the checkpoint` +
    (check.checkpoint ? ` (tree size ${check.checkpoint.tree_size})` : ' (none: the ledger had no checkpoint)') +
    (check.consistencyFrom !== null ? `, the ledger grew from size ${check.consistencyFrom} without changing it${previous !== undefined ? ' (the previous bundle\'s checkpoint)' : ''}` : '');
  if (check.signatures !== 'verified') {
    const why = check.signatures === 'unsigned' ? 'the manifest is not signed' : 'no --public-key was given, so no signature was checked';
    if (!flag(p, 'allow-unsigned')) {
      throw new LedgerError(
        'LEDGER_PROOF_UNAUTHENTICATED',
        `nothing was proven: ${why}, and anyone can make a bundle whose hashes match. Give the ledger's public key (--public-key FILE or LLM_AUDIT_PUBLIC_KEY), or --allow-unsigned to check only the hashes`,
      );
    }
    await io.out(`UNAUTHENTICATED: ${what}; but ${why}\n`);
    return EXIT.ok;
  }
  await io.out(`OK ${dir}: ${what}; manifest and checkpoint signed by the given key\n`);
  return EXIT.ok;
}
