import type { ProviderGuardrail } from '../core/types';
import type { GuardrailAction, GuardrailResult } from '../guardrails';

/**
 * Azure OpenAI runs its content filters on every prompt and completion and says what they decided:
 * `prompt_filter_results` (`[{ prompt_index, content_filter_results }]`) and each choice's
 * `content_filter_results`, one entry per category (`hate`, `sexual`, `violence`, `self_harm`:
 * `{ filtered, severity }`; `jailbreak`, `protected_material_text`...: `{ filtered, detected }`).
 * Those are guardrail decisions made by the provider, recorded as `llm_audit.guardrail` events named
 * `azure.content_filter.prompt` and `azure.content_filter.completion`.
 *
 * A stream repeats the completion's results in every chunk: they are merged into one decision per
 * location and category (filtered if any chunk was, the highest severity seen), so that a long
 * stream does not make hundreds of events. Choices and prompts are merged alike.
 */
export class AzureContentFilters {
  // Made at the first decision: most calls (any provider but Azure) never have one.
  private decisions: Map<string, Decision> | undefined;

  /** Reads the filter results of a response or stream chunk, if it has any (cheap when it has none). */
  addResponse(data: any): void {
    const prompts = data?.prompt_filter_results ?? data?.prompt_annotations;
    if (Array.isArray(prompts)) {
      for (const prompt of prompts) this.add('prompt', prompt?.content_filter_results);
    }
    const choices = data?.choices;
    if (Array.isArray(choices)) {
      for (const choice of choices) {
        if (choice?.content_filter_results !== undefined) this.add('completion', choice.content_filter_results);
      }
    }
  }

  /**
   * Reads the decision of an API error: a prompt the filter refused comes back as a 400 whose body
   * has `error.code` = `content_filter` and `error.innererror.content_filter_result` (the SDK keeps
   * the body's `error` object as the APIError's `error`).
   */
  addError(error: any): void {
    this.add('prompt', error?.error?.innererror?.content_filter_result);
  }

  /** The merged decisions, or undefined when the provider sent none. */
  results(): ProviderGuardrail[] | undefined {
    if (this.decisions === undefined) return undefined;
    const results: ProviderGuardrail[] = [];
    for (const decision of this.decisions.values()) {
      const result: GuardrailResult = { name: `azure.content_filter.${decision.location}`, action: actionOf(decision), category: decision.category };
      if (decision.severity !== undefined) result.severity = decision.severity;
      results.push({ result });
    }
    return results;
  }

  private add(location: 'prompt' | 'completion', categories: unknown): void {
    if (typeof categories !== 'object' || categories === null) return;
    for (const category of Object.keys(categories)) {
      const entry = (categories as Record<string, any>)[category];
      // Only the entries that are a decision; `error` (the filter could not run) has a code instead.
      if (typeof entry?.filtered !== 'boolean') continue;
      const key = `${location}/${category}`;
      this.decisions ??= new Map();
      let decision = this.decisions.get(key);
      if (decision === undefined) {
        decision = { location, category, filtered: false, detected: false, severity: undefined };
        this.decisions.set(key, decision);
      }
      decision.filtered ||= entry.filtered;
      decision.detected ||= entry.detected === true;
      if (typeof entry.severity === 'string' && rank(entry.severity) >= rank(decision.severity)) decision.severity = entry.severity;
    }
  }
}

interface Decision {
  location: 'prompt' | 'completion';
  category: string;
  filtered: boolean;
  detected: boolean;
  severity: string | undefined;
}

const SEVERITIES = ['safe', 'low', 'medium', 'high'];

function rank(severity: string | undefined): number {
  // Unknown severities rank above the known ones: a new, stronger level is never hidden.
  return severity === undefined ? -1 : SEVERITIES.includes(severity) ? SEVERITIES.indexOf(severity) : SEVERITIES.length;
}

/** Filtered: the provider withheld the text; detected or above `safe` but let through: flagged. */
function actionOf(decision: Decision): GuardrailAction {
  if (decision.filtered) return 'blocked';
  if (decision.detected || (decision.severity !== undefined && decision.severity !== 'safe')) return 'flagged';
  return 'allowed';
}

/** The provider's filter decisions carried by a failed call's error, if any. */
export function errorContentFilters(error: unknown): ProviderGuardrail[] | undefined {
  const filters = new AzureContentFilters();
  filters.addError(error);
  return filters.results();
}
