/**
 * Bedrock Guardrails results as `llm_audit.guardrail` events: Converse's `trace.guardrail`
 * (`inputAssessment` / `outputAssessments`, keyed by guardrail id) and InvokeModel's
 * `amazon-bedrock-trace.guardrail` (`input` / `outputs`) with `amazon-bedrock-guardrailAction`.
 *
 * One event per finding a policy reports (topic, content filter, word, PII entity, regex,
 * contextual grounding check, automated reasoning), named by the policy and the finding's type or
 * the operator's name for it. Never the matched text: `match`, `regex` and `modelOutput` quote the
 * prompt or the answer and are left out.
 */
import type { GuardrailAction } from '../../guardrails';
import * as A from '../../semconv';
import type { ProviderGuardrail } from '../../core/types';

type Obj = Record<string, unknown>;

const isObj = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The guardrail event `name` of every decision Bedrock reports. */
export const BEDROCK_GUARDRAIL_NAME = 'aws.bedrock.guardrail';

/** Bedrock's finding actions: BLOCKED, ANONYMIZED (the text was masked), NONE (detected, let through). */
function action(value: unknown): GuardrailAction {
  if (value === 'BLOCKED') return 'blocked';
  if (value === 'ANONYMIZED') return 'modified';
  return 'flagged';
}

// For each policy: where its findings are listed, and which field names the finding.
const POLICIES: ReadonlyArray<[policy: string, list: string, label: string]> = [
  ['topicPolicy', 'topics', 'name'],
  ['contentPolicy', 'filters', 'type'],
  ['wordPolicy', 'customWords', ''],
  ['wordPolicy', 'managedWordLists', 'type'],
  ['sensitiveInformationPolicy', 'piiEntities', 'type'],
  ['sensitiveInformationPolicy', 'regexes', 'name'],
  ['contextualGroundingPolicy', 'filters', 'type'],
];

export function assessmentEvents(out: ProviderGuardrail[], guardrailId: string, stage: 'input' | 'output', assessment: unknown): void {
  if (!isObj(assessment)) return;
  for (const [policy, list, label] of POLICIES) {
    const section = assessment[policy];
    const findings = isObj(section) ? section[list] : undefined;
    if (!Array.isArray(findings)) continue;
    for (const finding of findings) {
      if (!isObj(finding)) continue;
      const name = label !== '' && typeof finding[label] === 'string' ? finding[label] : list;
      const score = finding['score'];
      const severity = finding['confidence'];
      out.push({
        result: {
          name: BEDROCK_GUARDRAIL_NAME,
          action: action(finding['action']),
          category: `${policy}.${name}`,
          ...(typeof score === 'number' ? { score } : {}),
          ...(typeof severity === 'string' ? { severity } : {}),
        },
        attributes: { [A.ATTR_AWS_BEDROCK_GUARDRAIL_ID]: guardrailId, [A.ATTR_AUDIT_GUARDRAIL_STAGE]: stage },
      });
    }
  }
  const reasoning = assessment['automatedReasoningPolicy'];
  if (isObj(reasoning) && Array.isArray(reasoning['findings'])) {
    for (const finding of reasoning['findings']) {
      if (!isObj(finding)) continue;
      const kind = Object.keys(finding)[0] ?? 'finding';
      out.push({
        result: { name: BEDROCK_GUARDRAIL_NAME, action: 'flagged', category: `automatedReasoningPolicy.${kind}` },
        attributes: { [A.ATTR_AWS_BEDROCK_GUARDRAIL_ID]: guardrailId, [A.ATTR_AUDIT_GUARDRAIL_STAGE]: stage },
      });
    }
  }
}

/** Assessments keyed by guardrail id (`{ [id]: assessment }` or `{ [id]: assessment[] }`). */
function keyed(out: ProviderGuardrail[], stage: 'input' | 'output', byId: unknown): void {
  if (!isObj(byId)) return;
  for (const id of Object.keys(byId)) {
    const value = byId[id];
    for (const assessment of Array.isArray(value) ? value : [value]) assessmentEvents(out, id, stage, assessment);
  }
}

/**
 * The events of a guardrail trace (Converse `trace.guardrail`, InvokeModel
 * `amazon-bedrock-trace.guardrail`). `intervened`: the response says a guardrail intervened; when
 * the trace lists no blocking finding (tracing off), one `blocked` event still records it.
 */
export function bedrockGuardrails(trace: unknown, stopReason: unknown, intervened = stopReason === 'guardrail_intervened'): ProviderGuardrail[] | undefined {
  const out: ProviderGuardrail[] = [];
  if (isObj(trace)) {
    keyed(out, 'input', trace['inputAssessment'] ?? trace['input']);
    keyed(out, 'output', trace['outputAssessments']);
    if (Array.isArray(trace['outputs'])) for (const item of trace['outputs']) keyed(out, 'output', item);
  }
  if (intervened && !out.some((event) => event.result.action === 'blocked' || event.result.action === 'modified')) {
    out.push({ result: { name: BEDROCK_GUARDRAIL_NAME, action: 'blocked', category: 'guardrail_intervened' } });
  }
  return out.length > 0 ? out : undefined;
}
