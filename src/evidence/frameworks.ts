/**
 * What each framework asks of an LLM audit trail, and what the gathered facts show for it. A
 * requirement's status is decided only from the facts (./facts.ts), by rules stated in its text,
 * so a reader can check every verdict against the numbers printed beside it.
 *
 * The citations name the provisions the evidence speaks to; they are not legal advice, and the
 * report says so.
 */
import { addDuration, parseDuration } from '../ledger/policy';
import type { EvidenceFacts } from './facts';

export const FRAMEWORKS = ['eu-ai-act', 'hipaa', 'soc2', 'gdpr'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

/** shown: the ledger shows it for the period; partly: it shows some of it (the lines say what is missing); failed: it shows the opposite. */
export type Status = 'shown' | 'partly' | 'failed';

export interface RequirementResult {
  id: string;
  cite: string;
  title: string;
  status: Status;
  evidence: string[];
}

interface Requirement {
  id: string;
  cite: string;
  title: string;
  assess(f: EvidenceFacts): { status: Status; evidence: string[] };
}

export const FRAMEWORK_TITLES: Record<Framework, string> = {
  'eu-ai-act': 'EU AI Act (Regulation (EU) 2024/1689): record-keeping',
  hipaa: 'HIPAA Security Rule (45 CFR Part 164): audit controls and retention',
  soc2: 'SOC 2 (Trust Services Criteria 2017, rev. 2022): system operations',
  gdpr: 'GDPR (Regulation (EU) 2016/679): records of processing and erasure',
};

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Integrity first: every other verdict is worth nothing when the ledger does not verify. */
function integrity(f: EvidenceFacts): { status: Status; evidence: string[] } {
  const v = f.ledger.verify;
  if (!v.ok) return { status: 'failed', evidence: [`verify FAILED: ${v.code}: ${v.message}`] };
  const lines = [`verify OK: ${plural(v.records, 'record')} present, tree size ${v.tree_size}, ${v.removed_by_retention} removed by retention under signed tombstones`];
  let status: Status = 'shown';
  if (!f.ledger.signed_with_given_key) {
    status = 'partly';
    lines.push('signatures not checked against a public key given to this command: anyone able to rewrite the files could have re-made the checkpoints');
  } else lines.push(`${plural(v.signatures_verified, 'checkpoint signature')} verified with the given public key`);
  if (v.recovered > 0) {
    status = 'partly';
    lines.push(`${plural(v.recovered, 'record')} recovered at a writer's start after a crash: not signed when written`);
  }
  for (const w of v.warnings) lines.push(`warning: ${w}`);
  return { status, evidence: lines };
}

function completeness(f: EvidenceFacts): { status: Status; evidence: string[] } {
  const base = integrity(f);
  if (base.status === 'failed') return base;
  const lost = f.gaps.reduce((n, g) => n + g.lost, 0);
  const lines = [
    `${plural(f.records.calls, 'LLM call')} recorded between ${f.period.from} and ${f.period.to}` +
      (f.records.first ? ` (first ${f.records.first}, last ${f.records.last})` : ''),
    ...base.evidence,
  ];
  let status = base.status;
  if (lost > 0) {
    status = 'partly';
    lines.push(`${plural(lost, 'audit record')} could not be written in the period (ledger.gap records: ${f.gaps.map((g) => `${g.lost} between ${g.first_failure} and ${g.last_failure}`).join('; ')})`);
  } else lines.push('no ledger.gap record in the period: no writer reported an audit record it could not write');
  const unaudited = f.records.by_status['unaudited'] ?? 0;
  if (unaudited > 0) {
    status = 'partly';
    lines.push(`${plural(unaudited, 'LLM API request')} went out outside any audited call (status unaudited)`);
  }
  return { status, evidence: lines };
}

function inputReference(f: EvidenceFacts): { status: Status; evidence: string[] } {
  const calls = f.records.calls;
  const hashed = f.records.with_input_hash;
  const users = f.records.with_user;
  const status: Status = calls === 0 || (hashed === calls && users === calls) ? 'shown' : 'partly';
  return {
    status,
    evidence: [
      `${hashed} of ${plural(calls, 'call')} reference their input by a keyed HMAC-SHA-256 hash (the text itself is not stored)`,
      `${users} of ${plural(calls, 'call')} name the user; ${f.by_tenant.filter((t) => t.tenant_id !== null).length} tenants, ${f.by_user.filter((u) => u.user_id !== null).length} users`,
      'each record holds the call start time and its latency (the period of each use)',
    ],
  };
}

/** Retention at least `minimum` long: the tombstones written in the ledger say what each run removed and under which policy. */
function retention(minimum: string, label: string) {
  return (f: EvidenceFacts): { status: Status; evidence: string[] } => {
    const floor = addDuration(0, parseDuration(minimum));
    if (f.retention.length === 0) {
      return { status: 'shown', evidence: [`no retention run has removed records from this ledger: everything it ever held is still there (${label} requires at least ${minimum})`] };
    }
    const short = f.retention.filter((t) => ['metadata', 'content', 'errors'].some((k) => typeof t.policy[k] === 'string' && addDuration(0, parseDuration(String(t.policy[k]))) < floor));
    const evidence = f.retention.map(
      (t) => `${t.applied_at}: policy ${t.policy.name ?? '?'} (metadata ${t.policy.metadata ?? '?'}, content ${t.policy.content ?? '?'}, errors ${t.policy.errors ?? '?'}) removed ${plural(t.removed_records, 'record')}${t.signed ? '' : ' (tombstone NOT signed)'}`,
    );
    if (short.length > 0) evidence.push(`${plural(short.length, 'retention run')} kept some records for less than ${minimum}`);
    return { status: short.length > 0 ? 'failed' : 'shown', evidence };
  };
}

function monitoring(f: EvidenceFacts): { status: Status; evidence: string[] } {
  const t = f.totals;
  const rate = t.calls > 0 ? ((100 * t.errors) / t.calls).toFixed(1) : '0.0';
  return {
    status: 'shown',
    evidence: [
      `${plural(t.errors, 'failed call')} of ${t.calls} (${rate} %); most common error types: ${f.error_types.slice(0, 3).map((e) => `${e.error_type} (${e.count})`).join(', ') || 'none'}`,
      `${plural(t.blocked, 'call')} blocked; guardrail decisions: ${f.guardrails.map((g) => `${g.rule} ${g.action} ×${g.count}`).join(', ') || 'none recorded'}`,
      `${plural(f.sanitization.findings, 'sensitive-data finding')} in ${plural(f.sanitization.calls_with_findings, 'call')}`,
    ],
  };
}

function processing(f: EvidenceFacts): { status: Status; evidence: string[] } {
  const providers = [...new Set(f.by_model.map((m) => m.provider ?? 'unknown'))];
  return {
    status: 'shown',
    evidence: [
      `recipients (providers the data went to): ${providers.join(', ') || 'none'}`,
      `models: ${f.by_model.map((m) => `${m.provider ?? '?'}/${m.model ?? '?'} (${m.calls})`).join(', ') || 'none'}`,
      `${f.by_tenant.length} tenant groups, ${f.by_user.length} user groups; prompts and outputs are kept only as keyed hashes`,
    ],
  };
}

function erasure(f: EvidenceFacts): { status: Status; evidence: string[] } {
  return {
    status: 'shown',
    evidence:
      f.erasures.length === 0
        ? ['no erasure (content.shred) was performed in the period']
        : f.erasures.map((e) => `${e.timestamp}: encrypted content of tenant ${e.tenant_id ?? '(none)'} made unreadable by destroying its data keys (content.shred)`),
  };
}

const REQUIREMENTS: Record<Framework, Requirement[]> = {
  'eu-ai-act': [
    { id: 'art12-1', cite: 'Art. 12(1)', title: 'Automatic recording of events over the lifetime of the system', assess: completeness },
    { id: 'art12-3', cite: 'Art. 12(2)-(3)', title: 'Period of each use, reference to the input data, persons involved', assess: inputReference },
    { id: 'art19', cite: 'Art. 19(1), 26(6)', title: 'Logs kept for at least six months', assess: retention('6m', 'the AI Act') },
    { id: 'art26-5', cite: 'Art. 26(5), 72', title: 'Monitoring the operation of the system', assess: monitoring },
  ],
  hipaa: [
    { id: '164.312b', cite: '45 CFR 164.312(b)', title: 'Audit controls: record and examine activity in systems that use ePHI', assess: completeness },
    { id: '164.312c', cite: '45 CFR 164.312(c)(1)', title: 'Integrity: the audit records were not altered or destroyed', assess: integrity },
    { id: '164.308a1', cite: '45 CFR 164.308(a)(1)(ii)(D)', title: 'Information system activity review', assess: monitoring },
    { id: '164.316b2', cite: '45 CFR 164.316(b)(2)(i)', title: 'Documentation retained for six years', assess: retention('6y', 'HIPAA') },
  ],
  soc2: [
    { id: 'cc7.2', cite: 'CC7.2', title: 'Monitoring system components for anomalies', assess: monitoring },
    { id: 'cc7.3', cite: 'CC7.3', title: 'Evaluating security events (blocks, gaps, integrity)', assess: completeness },
    { id: 'cc4.1', cite: 'CC4.1', title: 'Evaluations of controls: the log verifies', assess: integrity },
  ],
  gdpr: [
    { id: 'art30', cite: 'Art. 30', title: 'Records of processing: recipients, categories, period', assess: processing },
    { id: 'art17', cite: 'Art. 17', title: 'Erasures carried out', assess: erasure },
    { id: 'art5-1e', cite: 'Art. 5(1)(e)', title: 'Storage limitation: what retention removed', assess: retention('1d', 'GDPR') },
    { id: 'art32', cite: 'Art. 32(1)(b), (d)', title: 'Integrity of the processing records', assess: integrity },
  ],
};

export function assess(framework: Framework, facts: EvidenceFacts): RequirementResult[] {
  return REQUIREMENTS[framework].map((r) => ({ id: r.id, cite: r.cite, title: r.title, ...r.assess(facts) }));
}

/** What no ledger of this kind can show, whatever the framework: printed in every report. */
export const LIMITS = [
  'Calls made by clients that are not instrumented are not in the ledger; the unaudited-request watcher records the LLM API requests it sees outside audited calls, not every possible path.',
  'Records cut from the end of the ledger after its newest checkpoint, together with that checkpoint, are caught only against a checkpoint kept elsewhere (llm-audit checkpoint, a previous bundle, a witness).',
  'Whoever holds the signing key can rewrite history and sign it again; a previous bundle\'s checkpoint or a witness\'s cosignature is what catches that.',
  'Prompts and outputs are stored as keyed hashes (and encrypted content only when that capture is on): the ledger proves which text was sent only to someone who holds the text and the hash key.',
  'Costs are estimates from the price table in use when the call was made, not the provider\'s invoice.',
  'This report maps the ledger to the provisions it names; whether those provisions apply, and whether the evidence is sufficient, is for your compliance officer or counsel to decide.',
];
