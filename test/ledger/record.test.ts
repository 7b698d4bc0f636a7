import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json';
import { isAuditSpan, recordFromSpan } from '../../src/ledger/record';

function span(attributes: Attributes, extra: Partial<ReadableSpan> = {}): ReadableSpan {
  return {
    name: 'chat gpt-4o',
    kind: SpanKind.CLIENT,
    spanContext: () => ({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 }),
    startTime: [1_772_359_200, 123_456_789], // 2026-03-01T10:00:00.123Z
    endTime: [1_772_359_201, 623_456_789],
    duration: [1, 500_000_000],
    status: { code: SpanStatusCode.UNSET },
    attributes,
    links: [],
    events: [],
    ended: true,
    resource: {} as never,
    instrumentationScope: { name: 'otel-llm-audit' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
    ...extra,
  } as ReadableSpan;
}

describe('recordFromSpan', () => {
  it('maps every field from the span attributes and events', () => {
    const record = recordFromSpan(
      span(
        {
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': 'openai',
          'gen_ai.request.model': 'gpt-4o',
          'gen_ai.response.model': 'gpt-4o-2024-08-06',
          'llm_audit.request_id': 'r-1',
          'llm_audit.action': 'chat.completions.create',
          'llm_audit.status': 'success',
          'user.id': 'alice',
          'session.id': 's-9',
          'llm_audit.tenant.id': 'acme',
          'llm_audit.system_prompt.hash': 'sha256:aa',
          'llm_audit.input.hash': 'sha256:bb',
          'llm_audit.output.hash': 'sha256:cc',
          'gen_ai.usage.input_tokens': 120,
          'gen_ai.usage.output_tokens': 30,
          'gen_ai.usage.cache_read.input_tokens': 100,
          'gen_ai.usage.cache_creation.input_tokens': 0,
          'gen_ai.usage.reasoning.output_tokens': 12,
          'gen_ai.usage.cost.amount': 0.00042,
          'gen_ai.usage.cost.currency': 'USD',
          'llm_audit.sanitization.count': 2,
          'llm_audit.tool.names': ['search', 'lookup'],
          'llm_audit.rag.document_ids': ['doc-1', 'doc-2'],
          'llm_audit.metadata.feature': 'support-bot',
          'llm_audit.metadata.priority': 3,
          'gen_ai.input.messages': 'NEVER COPIED',
          'client.address': '203.0.113.0',
          'user_agent.original': 'Mozilla/5.0 test',
          'llm_audit.sanitization.mode': 'redact',
        },
        {
          events: [
            {
              name: 'llm_audit.guardrail',
              time: [1_772_359_200, 500_000_000],
              attributes: { 'llm_audit.guardrail.name': 'pii', 'llm_audit.guardrail.decision': 'redact', 'llm_audit.guardrail.reason': 'found [EMAIL]' },
            },
            { name: 'other', time: [1_772_359_200, 0] },
            { name: 'llm_audit.sanitization', time: [1_772_359_200, 0], attributes: { 'llm_audit.sanitization.type': 'EMAIL', 'llm_audit.sanitization.count': 1, 'llm_audit.sanitization.location': 'messages[0]' } },
            { name: 'llm_audit.sanitization', time: [1_772_359_200, 0], attributes: { 'llm_audit.sanitization.type': 'EMAIL', 'llm_audit.sanitization.count': 2, 'llm_audit.sanitization.location': 'messages[2]' } },
            { name: 'llm_audit.sanitization', time: [1_772_359_200, 0], attributes: { 'llm_audit.sanitization.type': 'CARD', 'llm_audit.sanitization.count': 1, 'llm_audit.sanitization.location': 'messages[2]' } },
          ],
          resource: {
            attributes: {
              'service.name': 'support-bot',
              'service.namespace': 'shop',
              'service.version': '1.4.2',
              'service.instance.id': 'pod-7',
              'deployment.environment.name': 'production',
            },
          } as never,
        },
      ),
    );
    expect(record).toEqual({
      v: 3,
      request_id: 'r-1',
      timestamp: '2026-03-01T10:00:00.123Z',
      trace_id: '0af7651916cd43dd8448eb211c80319c',
      span_id: 'b7ad6b7169203331',
      user_id: 'alice',
      session_id: 's-9',
      tenant_id: 'acme',
      provider: 'openai',
      operation: 'chat',
      model: { request: 'gpt-4o', response: 'gpt-4o-2024-08-06' },
      action: 'chat.completions.create',
      status: 'success',
      system_prompt_hash: 'sha256:aa',
      input_hash: 'sha256:bb',
      output_hash: 'sha256:cc',
      input_tokens: 120,
      output_tokens: 30,
      cache_read_tokens: 100,
      cache_creation_tokens: 0,
      thinking_tokens: 12,
      latency_ms: 1500,
      cost_usd: 0.00042,
      error_type: null,
      http_status: null,
      error_message: null,
      sanitization_count: 2,
      guardrails: [{ name: 'pii', decision: 'redact', reason: 'found [EMAIL]', time: '2026-03-01T10:00:00.500Z' }],
      tools: ['search', 'lookup'],
      rag_document_ids: ['doc-1', 'doc-2'],
      metadata: { feature: 'support-bot', priority: 3 },
      content: null,
      service_name: 'support-bot',
      service_namespace: 'shop',
      service_version: '1.4.2',
      service_instance_id: 'pod-7',
      deployment_environment: 'production',
      client_address: '203.0.113.0',
      user_agent: 'Mozilla/5.0 test',
      block_reason: null,
      // Counts per kind over every location, and the mode (issue 24).
      sanitization: { mode: 'redact', kinds: { EMAIL: 3, CARD: 1 } },
    });
    expect(canonicalJson(record)).not.toContain('NEVER COPIED');
  });

  it('cache writes: the conventions\' new name first, the old one for spans from before the rename', () => {
    const base = { 'llm_audit.request_id': 'r-1', 'llm_audit.status': 'success' };
    const both = recordFromSpan(span({ ...base, 'gen_ai.usage.cache_write.input_tokens': 7, 'gen_ai.usage.cache_creation.input_tokens': 7 }));
    const newOnly = recordFromSpan(span({ ...base, 'gen_ai.usage.cache_write.input_tokens': 5 }));
    const oldOnly = recordFromSpan(span({ ...base, 'gen_ai.usage.cache_creation.input_tokens': 3 }));
    expect([both.cache_creation_tokens, newOnly.cache_creation_tokens, oldOnly.cache_creation_tokens]).toEqual([7, 5, 3]);
  });

  it('uses null, never 0, for what the span does not say', () => {
    const record = recordFromSpan(span({ 'gen_ai.operation.name': 'chat', 'gen_ai.usage.input_tokens': Number.NaN }))!;
    expect(record.input_tokens).toBeNull();
    expect(record.output_tokens).toBeNull();
    expect(record.cost_usd).toBeNull();
    expect(record.user_id).toBeNull();
    expect(record.metadata).toBeNull();
    expect(record.guardrails).toBeNull();
    expect(record.tools).toBeNull();
    expect(record.status).toBeNull();
    expect(() => canonicalJson(record)).not.toThrow();
  });

  it('does not count a cost in another currency as USD, and derives error status from the span status', () => {
    const record = recordFromSpan(
      span(
        { 'llm_audit.request_id': 'r', 'gen_ai.usage.cost.amount': 3, 'gen_ai.usage.cost.currency': 'EUR', 'error.type': 'RateLimitError', 'llm_audit.error.message': 'slow down', 'http.response.status_code': 429 },
        { status: { code: SpanStatusCode.ERROR } },
      ),
    )!;
    expect(record.cost_usd).toBeNull();
    expect(record.status).toBe('error');
    expect(record.error_type).toBe('RateLimitError');
    expect(record.error_message).toBe('slow down');
    expect(record.http_status).toBe(429);
  });

  it('only turns audited LLM spans into records', () => {
    expect(isAuditSpan(span({ 'http.method': 'GET' }))).toBe(false);
    expect(recordFromSpan(span({ 'http.method': 'GET' }))).toBeUndefined();
    expect(isAuditSpan(span({ 'llm_audit.tenant.id': 't' }))).toBe(true);
    expect(isAuditSpan(span({ 'gen_ai.operation.name': 'embeddings' }))).toBe(true);
  });
});
