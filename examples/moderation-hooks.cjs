// A guardrail for `LLM_AUDIT_HOOKS=examples/moderation-hooks.cjs node --require otel-llm-audit/register app.js`:
// every prompt goes through the OpenAI moderation endpoint first; a flagged prompt is blocked (the
// app gets an LlmRequestBlockedError and the provider never sees it), and each verdict is recorded
// on the audited call as a `llm_audit.guardrail` event. The prompt itself never leaves the process
// except to the moderation endpoint, which is the point of the check.
const OpenAI = require('openai');
const { blockRequest, recordGuardrail } = require('otel-llm-audit');

const moderation = new OpenAI({
  apiKey: process.env.OPENAI_API_KEY ?? 'sk-demo-key',
  baseURL: process.env.FAKE_PROVIDER_URL ? `${process.env.FAKE_PROVIDER_URL}/v1` : undefined,
  maxRetries: 1,
});

/** The user-visible text of a request, whatever the provider's message shape. */
function promptText(params) {
  const parts = [];
  const walk = (value) => {
    if (typeof value === 'string') parts.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') ['content', 'text', 'input', 'system', 'instructions', 'messages'].forEach((k) => walk(value[k]));
  };
  walk(params);
  return parts.join('\n');
}

exports.beforeRequest = async function beforeRequest(request) {
  const result = (await moderation.moderations.create({ model: 'omni-moderation-latest', input: promptText(request.params) })).results[0];
  const [category, score] = Object.entries(result.category_scores).sort((a, b) => b[1] - a[1])[0];
  const verdict = { name: 'openai-moderation', policyId: 'omni-moderation-latest', category, score };
  // blockRequest records the `blocked` guardrail event itself; an allowed prompt is recorded here.
  if (result.flagged) blockRequest(`the moderation endpoint flagged the prompt (${category})`, verdict);
  recordGuardrail({ ...verdict, action: 'allowed' });
};
