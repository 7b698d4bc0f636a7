/**
 * Evidence bundles: a directory an auditor can file and check offline.
 *
 *   report.html       the report (./html.ts)
 *   evidence.json     the same facts and verdicts, machine-readable (schema below)
 *   checkpoint.json   the ledger's newest checkpoint: what every proof below leads to
 *   proofs/inclusion-<seq>.json   inclusion proofs of a sample of the period's records
 *   consistency.json  with --previous: the previous bundle's checkpoint is a prefix of this one
 *   manifest.json     SHA-256 and size of every file above
 *   manifest.sig.json Ed25519 signature of manifest.json by the ledger's signing key
 *
 * The sample is deterministic so that two people building the bundle of the same period get the
 * same proofs: the first and the last record of the period and evenly spaced ones between them
 * (SAMPLE_SIZE in all), among those the newest checkpoint covers.
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { requireWholeLedger, type LedgerSource } from '../ledger/backend';
import { checkSignature, keyIdOf, parseCheckpoint, type Checkpoint } from '../ledger/checkpoint';
import { LedgerError } from '../ledger/errors';
import { proveConsistency, proveInclusions, verifyProof } from '../ledger/proofs';
import { scanRecords } from '../ledger/query';
import type { VerifyOptions } from '../ledger/verify';
import { gatherFacts, type EvidenceFacts } from './facts';
import { assess, type Framework, type RequirementResult } from './frameworks';
import { renderEvidenceHtml } from './html';

export const EVIDENCE_SCHEMA = 'otel-llm-audit/evidence';
export const EVIDENCE_SCHEMA_VERSION = 1;
export const SAMPLE_SIZE = 10;
/** Prefixed to manifest.json's bytes before signing: a signature made for something else never passes as this. */
const MANIFEST_CONTEXT = 'otel-llm-audit evidence manifest v1\n';

const MANIFEST = 'manifest.json';
const SIGNATURE = 'manifest.sig.json';

export interface EvidenceJson {
  schema: typeof EVIDENCE_SCHEMA;
  schema_version: typeof EVIDENCE_SCHEMA_VERSION;
  framework: Framework;
  generated_at: string;
  facts: EvidenceFacts;
  requirements: RequirementResult[];
  sample: { method: string; seqs: number[]; not_covered: number };
}

export interface Manifest {
  schema: typeof EVIDENCE_SCHEMA;
  schema_version: typeof EVIDENCE_SCHEMA_VERSION;
  generated_at: string;
  framework: Framework;
  period: { from: string; to: string };
  ledger_id: string | null;
  checkpoint: { tree_size: number; root: string } | null;
  files: Array<{ path: string; sha256: string; bytes: number }>;
}

export interface BuildOptions {
  framework: Framework;
  from: number;
  to: number;
  out: string;
  /** Signs the manifest (the ledger's checkpoint signing key). */
  signingKey?: KeyObject;
  /** The previous bundle's directory: a consistency proof from its checkpoint is included. */
  previous?: string;
  verify?: VerifyOptions;
  now?: Date;
}

export interface BuildResult {
  facts: EvidenceFacts;
  requirements: RequirementResult[];
  files: string[];
  signed: boolean;
  sampled: number;
}

/** Seqs of the sample: indexes 0, last and evenly spaced between, of the period's records below `size`. */
async function sampleSeqs(source: LedgerSource, from: number, to: number, size: number): Promise<{ seqs: number[]; notCovered: number }> {
  let count = 0;
  let notCovered = 0;
  for await (const hit of scanRecords(source, { from, to })) {
    if (hit.seq < size) count++;
    else notCovered++;
  }
  if (count === 0) return { seqs: [], notCovered };
  const k = Math.min(SAMPLE_SIZE, count);
  const wanted = new Set(Array.from({ length: k }, (_, i) => (k === 1 ? 0 : Math.round((i * (count - 1)) / (k - 1)))));
  const seqs: number[] = [];
  let index = 0;
  for await (const hit of scanRecords(source, { from, to })) {
    if (hit.seq >= size) continue;
    if (wanted.has(index)) seqs.push(hit.seq);
    index++;
  }
  return { seqs, notCovered };
}

const json = (value: unknown): string => JSON.stringify(value, null, 2) + '\n';
const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');

function readJson(path: string, what: string): any {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new LedgerError('LEDGER_EVIDENCE_INVALID', `${what} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new LedgerError('LEDGER_EVIDENCE_INVALID', `${what} is not valid JSON`);
  }
}

export async function buildEvidence(source: LedgerSource, options: BuildOptions): Promise<BuildResult> {
  const generatedAt = (options.now ?? new Date()).toISOString();
  await requireWholeLedger(source, 'an evidence bundle (its proofs and checkpoint)');
  const facts = await gatherFacts(source, { from: options.from, to: options.to, ...(options.verify ? { verify: options.verify } : {}) });
  const requirements = assess(options.framework, facts);
  // A bundle whose checkpoint nobody signed still gets written (it says so); one whose ledger has
  // no checkpoint at all cannot carry proofs.
  const checkpoints = await source.checkpoints();
  let checkpoint: Checkpoint | undefined;
  for (const c of checkpoints) if (c.checkpoint.type === 'checkpoint' && (!checkpoint || c.checkpoint.tree_size >= checkpoint.tree_size)) checkpoint = c.checkpoint;
  const size = checkpoint?.tree_size ?? 0;
  const sample = await sampleSeqs(source, options.from, options.to, size);

  const files = new Map<string, string>();
  files.set('report.html', renderEvidenceHtml(options.framework, facts, requirements, generatedAt));
  const evidence: EvidenceJson = {
    schema: EVIDENCE_SCHEMA,
    schema_version: EVIDENCE_SCHEMA_VERSION,
    framework: options.framework,
    generated_at: generatedAt,
    facts,
    requirements,
    sample: {
      method: `first, last and evenly spaced records of the period, ${SAMPLE_SIZE} at most, among those the newest checkpoint covers`,
      seqs: sample.seqs,
      not_covered: sample.notCovered,
    },
  };
  files.set('evidence.json', json(evidence));
  if (checkpoint) {
    files.set('checkpoint.json', json(checkpoint));
    for (const proof of await proveInclusions(source, sample.seqs)) files.set(`proofs/inclusion-${proof.leaf_index}.json`, json(proof));
  }
  if (options.previous !== undefined) {
    const old = parseCheckpoint(readJson(join(options.previous, 'checkpoint.json'), `${options.previous}/checkpoint.json`), `${options.previous}/checkpoint.json`);
    if (!checkpoint) throw new LedgerError('LEDGER_NOT_CHECKPOINTED', 'the ledger has no checkpoint to prove consistency with --previous against');
    files.set('consistency.json', json(await proveConsistency(source, old, checkpoint)));
  }

  mkdirSync(join(options.out, 'proofs'), { recursive: true });
  const manifest: Manifest = {
    schema: EVIDENCE_SCHEMA,
    schema_version: EVIDENCE_SCHEMA_VERSION,
    generated_at: generatedAt,
    framework: options.framework,
    period: facts.period,
    ledger_id: facts.ledger.ledger_id,
    checkpoint: checkpoint ? { tree_size: checkpoint.tree_size, root: checkpoint.root } : null,
    files: [],
  };
  for (const [path, text] of files) {
    writeFileSync(join(options.out, path), text);
    manifest.files.push({ path, sha256: sha256(text), bytes: Buffer.byteLength(text) });
  }
  const manifestText = json(manifest);
  writeFileSync(join(options.out, MANIFEST), manifestText);
  if (options.signingKey) {
    const signature = sign(null, Buffer.from(MANIFEST_CONTEXT + manifestText), options.signingKey).toString('base64');
    writeFileSync(join(options.out, SIGNATURE), json({ key_id: keyIdOf(createPublicKey(options.signingKey)), signature }));
  }
  return { facts, requirements, files: [...files.keys(), MANIFEST, ...(options.signingKey ? [SIGNATURE] : [])], signed: options.signingKey !== undefined, sampled: sample.seqs.length };
}

export interface BundleCheck {
  files: number;
  /** 'verified' with a public key; 'unsigned' / 'unchecked' otherwise (the caller decides whether that is enough). */
  signatures: 'verified' | 'unsigned' | 'unchecked';
  checkpoint: { tree_size: number; root: string } | null;
  inclusionProofs: number;
  consistencyFrom: number | null;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(relative(dir, path).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

const sameTree = (a: Checkpoint, b: { tree_size: number; root: string }): boolean => a.tree_size === b.tree_size && a.root === b.root;

/**
 * Checks a bundle offline: every file is listed in the manifest with its hash and nothing else is
 * there, the manifest and checkpoint signatures (with `publicKey`), every proof, and that each
 * proof leads to the bundle's checkpoint; with `previous`, that the consistency proof starts at
 * the previous bundle's checkpoint. Throws LEDGER_EVIDENCE_INVALID (or the proof's own code).
 */
export function verifyEvidence(dir: string, options: { publicKey?: KeyObject; previous?: string } = {}): BundleCheck {
  const invalid = (message: string): never => {
    throw new LedgerError('LEDGER_EVIDENCE_INVALID', message);
  };
  const manifestPath = join(dir, MANIFEST);
  const manifestText = (() => {
    try {
      return readFileSync(manifestPath, 'utf8');
    } catch {
      return invalid(`${manifestPath} is missing: not an evidence bundle, or an incomplete one`);
    }
  })();
  let manifest: Manifest;
  try {
    manifest = JSON.parse(manifestText) as Manifest;
  } catch {
    return invalid(`${manifestPath} is not valid JSON`);
  }
  if (manifest?.schema !== EVIDENCE_SCHEMA || manifest.schema_version !== EVIDENCE_SCHEMA_VERSION || !Array.isArray(manifest.files)) {
    invalid(`${manifestPath}: not a version ${EVIDENCE_SCHEMA_VERSION} evidence manifest`);
  }
  // The signature first: a changed manifest is reported as that, not as whatever path it now names.
  let signatures: BundleCheck['signatures'] = 'unchecked';
  const signaturePath = join(dir, SIGNATURE);
  const signed = (() => {
    try {
      statSync(signaturePath);
      return true;
    } catch {
      return false;
    }
  })();
  if (!signed) {
    if (options.publicKey) invalid(`the manifest is not signed (no ${SIGNATURE}), but a public key was given: anyone could have made this bundle`);
    signatures = 'unsigned';
  } else if (options.publicKey) {
    let sig: { key_id?: unknown; signature?: unknown };
    try {
      sig = readJson(signaturePath, SIGNATURE);
    } catch (error) {
      throw new LedgerError('LEDGER_SIGNATURE_INVALID', (error as Error).message);
    }
    if (sig.key_id !== keyIdOf(options.publicKey)) {
      throw new LedgerError('LEDGER_SIGNATURE_INVALID', `${SIGNATURE}: signed by key ${String(sig.key_id)}, not by the given public key (${keyIdOf(options.publicKey)})`);
    }
    const ok = typeof sig.signature === 'string' && verify(null, Buffer.from(MANIFEST_CONTEXT + manifestText), options.publicKey, Buffer.from(sig.signature, 'base64'));
    if (!ok) throw new LedgerError('LEDGER_SIGNATURE_INVALID', `${SIGNATURE}: the manifest's signature does not verify: the manifest was changed after signing`);
    signatures = 'verified';
  }

  const listed = new Map(manifest.files.map((f) => [f.path, f]));
  for (const path of filesUnder(dir)) {
    if (path === MANIFEST || path === SIGNATURE) continue;
    const entry = listed.get(path);
    if (!entry) invalid(`${path} is in the bundle but not in its manifest: added after the bundle was made`);
    const bytes = readFileSync(join(dir, path));
    if (sha256(bytes) !== entry!.sha256 || bytes.length !== entry!.bytes) invalid(`${path} was changed after the bundle was made (its SHA-256 is not the manifest's)`);
    listed.delete(path);
  }
  for (const path of listed.keys()) invalid(`${path} is listed in the manifest but missing from the bundle`);

  let checkpoint: Checkpoint | null = null;
  if (manifest.checkpoint !== null) {
    checkpoint = parseCheckpoint(readJson(join(dir, 'checkpoint.json'), 'checkpoint.json'), 'checkpoint.json');
    if (!sameTree(checkpoint, manifest.checkpoint)) invalid('checkpoint.json is not the checkpoint the manifest names (size or root differ)');
    if (options.publicKey) {
      const state = checkSignature(checkpoint, options.publicKey);
      if (state === 'unsigned') throw new LedgerError('LEDGER_CHECKPOINT_UNSIGNED', 'checkpoint.json is not signed, but a public key was given');
      if (state !== 'valid') throw new LedgerError('LEDGER_SIGNATURE_INVALID', 'checkpoint.json is not validly signed by the given public key');
    }
  }
  const evidence = readJson(join(dir, 'evidence.json'), 'evidence.json') as EvidenceJson;
  if (checkpoint && evidence.facts?.ledger?.checkpoint?.tree_size !== checkpoint.tree_size) invalid("evidence.json's newest checkpoint is not checkpoint.json");

  let inclusionProofs = 0;
  for (const path of manifest.files.map((f) => f.path).filter((p) => p.startsWith('proofs/'))) {
    const proof = readJson(join(dir, path), path);
    if (proof?.type !== 'inclusion') invalid(`${path} is not an inclusion proof`);
    verifyProof(proof, options.publicKey);
    if (!checkpoint || !sameTree(parseCheckpoint(proof.checkpoint, path), checkpoint)) invalid(`${path} leads to another checkpoint than checkpoint.json`);
    inclusionProofs++;
  }
  const expected = (evidence.sample?.seqs ?? []).length;
  if (inclusionProofs !== expected) invalid(`evidence.json names ${expected} sampled records but the bundle holds ${inclusionProofs} inclusion proofs`);

  let consistencyFrom: number | null = null;
  const hasConsistency = manifest.files.some((f) => f.path === 'consistency.json');
  if (hasConsistency) {
    const proof = readJson(join(dir, 'consistency.json'), 'consistency.json');
    if (proof?.type !== 'consistency') invalid('consistency.json is not a consistency proof');
    verifyProof(proof, options.publicKey);
    if (!checkpoint || !sameTree(parseCheckpoint(proof.new_checkpoint, 'consistency.json'), checkpoint)) invalid('consistency.json does not end at checkpoint.json');
    consistencyFrom = proof.old_size;
    if (options.previous !== undefined) {
      const previous = parseCheckpoint(readJson(join(options.previous, 'checkpoint.json'), `${options.previous}/checkpoint.json`), `${options.previous}/checkpoint.json`);
      if (!sameTree(parseCheckpoint(proof.old_checkpoint, 'consistency.json'), previous)) {
        invalid(`consistency.json starts at size ${proof.old_size}, not at the previous bundle's checkpoint (size ${previous.tree_size}): it does not link the two bundles`);
      }
    }
  } else if (options.previous !== undefined) {
    invalid('the bundle holds no consistency.json, so nothing links it to the previous bundle (build it with --previous)');
  }
  return { files: manifest.files.length, signatures, checkpoint: manifest.checkpoint, inclusionProofs, consistencyFrom };
}
