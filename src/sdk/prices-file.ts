import { readFileSync } from 'node:fs';
import type { ModelPriceOverride } from '../audit/cost';

/**
 * `LLM_AUDIT_PRICES_FILE`: a JSON object of price overrides keyed by model id or `provider/model`,
 * each `{ "inputPerMTok": 2.5, "outputPerMTok": 10, "cacheReadPerMTok": 1.25, "cacheWritePerMTok": 3.75 }`
 * (USD per million tokens). The numbers are validated by the cost calculator.
 */
export function loadPriceOverrides(env: NodeJS.ProcessEnv): Record<string, ModelPriceOverride> | undefined {
  const path = env.LLM_AUDIT_PRICES_FILE;
  if (path === undefined || path === '') return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`LLM_AUDIT_PRICES_FILE=${path} cannot be read: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`LLM_AUDIT_PRICES_FILE=${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`LLM_AUDIT_PRICES_FILE=${path} must hold a JSON object keyed by model id`);
  }
  return parsed as Record<string, ModelPriceOverride>;
}
