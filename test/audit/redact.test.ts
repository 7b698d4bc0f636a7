import { describe, it, expect } from 'vitest';
import { APIError as OpenAIAPIError } from 'openai/error';
import { APIError as AnthropicAPIError } from '@anthropic-ai/sdk/error';
import { auditErrorMessage, errorType, maskSecrets, removeRequestText, REQUEST_TEXT_MASK, scrubText } from '../../src/audit/redact';

// Fake credentials with the real shapes (the alphabet is repeated, nothing here is a live key).
const ALNUM = 'AbCdEfGhIjKlMnOpQrStUvWxYz0123456789aBcDeFgHiJkL';
const OPENAI_LEGACY = `sk-${ALNUM}`; // sk- + 48
const OPENAI_PROJECT = `sk-proj-${ALNUM}_${ALNUM}-${ALNUM}`;
const OPENAI_SERVICE_ACCOUNT = `sk-svcacct-${ALNUM}${ALNUM}`;
const ANTHROPIC = `sk-ant-api03-${ALNUM}${ALNUM}-AbCdEfAA`;
const AWS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const AWS_TEMP_KEY_ID = 'ASIAY34FZKBOKMUTVV7A';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
const PEM_BODY = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu';

describe('maskSecrets', () => {
  it.each([
    ['OpenAI legacy key', OPENAI_LEGACY, 'sk-[REDACTED]'],
    ['OpenAI project key', OPENAI_PROJECT, 'sk-proj-[REDACTED]'],
    ['OpenAI service account key', OPENAI_SERVICE_ACCOUNT, 'sk-svcacct-[REDACTED]'],
    ['Anthropic key', ANTHROPIC, 'sk-ant-[REDACTED]'],
  ])('masks an %s and keeps its kind visible', (_label, secret, masked) => {
    const out = maskSecrets(`Incorrect API key provided: ${secret}. Check your key.`);
    expect(out).toBe(`Incorrect API key provided: ${masked}. Check your key.`);
    expect(out).not.toContain(secret.slice(-20));
  });

  it('masks a key inside JSON and after an equals sign', () => {
    expect(maskSecrets(`{"apiKey":"${OPENAI_PROJECT}"}`)).toBe('{"apiKey":"sk-proj-[REDACTED]"}');
    expect(maskSecrets(`OPENAI_API_KEY=${OPENAI_LEGACY}`)).toBe('OPENAI_API_KEY=sk-[REDACTED]');
  });

  it('masks bearer tokens, whatever the case of the scheme', () => {
    expect(maskSecrets(`Authorization: Bearer ${JWT}`)).toBe('Authorization: Bearer [REDACTED]');
    expect(maskSecrets(`authorization: bearer ${JWT}`)).toBe('authorization: bearer [REDACTED]');
    expect(maskSecrets(`Bearer ${OPENAI_PROJECT}`)).not.toContain(ALNUM);
  });

  it.each([
    [`x-api-key: ${ANTHROPIC}`, 'x-api-key: [REDACTED]'],
    ['X-Api-Key: some-opaque-token-123', 'X-Api-Key: [REDACTED]'],
    ['{"x-api-key":"opaque-123","accept":"json"}', '{"x-api-key":"[REDACTED]","accept":"json"}'],
    ['api-key=azure0123456789abcdef; other=1', 'api-key=[REDACTED]; other=1'],
    ['x-goog-api-key: AIzaSyA-1234567890abcdefghijklmnop', 'x-goog-api-key: [REDACTED]'],
  ])('masks the api-key header in %j', (input, expected) => {
    expect(maskSecrets(input)).toBe(expected);
  });

  it('masks AWS access key ids, long-term and temporary', () => {
    expect(maskSecrets(`credentials ${AWS_KEY_ID} rejected`)).toBe('credentials AKIA[REDACTED] rejected');
    expect(maskSecrets(`key=${AWS_TEMP_KEY_ID}`)).toBe('key=ASIA[REDACTED]');
  });

  it('masks an AWS secret access key next to its name', () => {
    expect(maskSecrets(`aws_secret_access_key = ${AWS_SECRET}`)).toBe('aws_secret_access_key = [REDACTED]');
    expect(maskSecrets(`"AwsSecretAccessKey":"${AWS_SECRET}"`)).toBe('"AwsSecretAccessKey":"[REDACTED]"');
  });

  it.each(['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY', 'OPENSSH PRIVATE KEY', 'ENCRYPTED PRIVATE KEY'])(
    'masks a %s block and keeps its markers',
    (label) => {
      const text = `key: -----BEGIN ${label}-----\n${PEM_BODY}\n-----END ${label}----- end`;
      const out = maskSecrets(text);
      expect(out).toBe(`key: -----BEGIN ${label}-----[REDACTED]-----END ${label}----- end`);
      expect(out).not.toContain('MIIEvQ');
    },
  );

  it('masks a PGP private key block', () => {
    const text = `-----BEGIN PGP PRIVATE KEY BLOCK-----\n${PEM_BODY}\n-----END PGP PRIVATE KEY BLOCK-----`;
    expect(maskSecrets(text)).not.toContain('MIIEvQ');
  });

  it('masks every block when there are several, and text between them survives', () => {
    const block = `-----BEGIN PRIVATE KEY-----\n${PEM_BODY}\n-----END PRIVATE KEY-----`;
    const out = maskSecrets(`one ${block} two ${block} three`);
    expect(out).toBe(
      'one -----BEGIN PRIVATE KEY-----[REDACTED]-----END PRIVATE KEY----- two ' +
        '-----BEGIN PRIVATE KEY-----[REDACTED]-----END PRIVATE KEY----- three',
    );
  });

  it('masks a truncated private key block (no END marker) to the end of the text', () => {
    const out = maskSecrets(`oops -----BEGIN RSA PRIVATE KEY-----\n${PEM_BODY.slice(0, 40)}`);
    expect(out).toBe('oops -----BEGIN RSA PRIVATE KEY-----[REDACTED]');
  });

  it('leaves certificates and public keys alone', () => {
    const text = `-----BEGIN CERTIFICATE-----\n${PEM_BODY}\n-----END CERTIFICATE-----`;
    expect(maskSecrets(text)).toBe(text);
  });

  it('masks several kinds in one text', () => {
    const out = maskSecrets(`Bearer ${JWT} x-api-key: ${ANTHROPIC} ${AWS_KEY_ID} ${OPENAI_LEGACY}`);
    for (const secret of [JWT, ANTHROPIC, AWS_KEY_ID, OPENAI_LEGACY]) expect(out).not.toContain(secret.slice(-12));
  });

  it.each([
    ['https://gw.example/v1/chat?key=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI&alt=sse', 'https://gw.example/v1/chat?key=[REDACTED]&alt=sse'],
    ['GET /v1/models?api_key=abc123def456 failed', 'GET /v1/models?api_key=[REDACTED] failed'],
    ['retry with access_token=ya29.a0AfH6SMC and token: t0k3nvalue', 'retry with access_token=[REDACTED] and token: [REDACTED]'],
    ['{"password":"hunter2hunter2","user":"bob"}', '{"password":"[REDACTED]","user":"bob"}'],
    ['signed url ...&sig=Zm9vYmFy%2Bbaz&se=2026', 'signed url ...&sig=[REDACTED]&se=2026'],
    ['proxy at https://bob:s3cr3t@proxy.internal:8080 refused', 'proxy at https://[REDACTED]@proxy.internal:8080 refused'],
    [`token ${JWT.slice(0, 80)}`, 'token [REDACTED]'],
  ])('masks credentials in URLs and parameter lists: %j', (text, expected) => {
    expect(maskSecrets(text)).toBe(expected);
  });

  it.each([
    'Rate limit reached for gpt-4o in organization org-abc on tokens per min.',
    'max_tokens: 4096 is too large',
    'task-list-for-the-assistant-to-process is empty',
    'Risk-assessment-framework-document not found',
    'sk-short is too short to be a key',
    'The model `gpt-4o-2024-08-06` does not exist or you do not have access to it.',
    'connect ECONNREFUSED 127.0.0.1:443',
    'AKIA is a prefix, AKIAshort is not a key id',
  ])('leaves ordinary text alone: %j', (text) => {
    expect(maskSecrets(text)).toBe(text);
  });

  it('leaves a long text without secrets unchanged', () => {
    const text = 'x'.repeat(10_000);
    expect(maskSecrets(text)).toBe(text);
  });

  describe('runs in linear time on adversarial megabyte inputs', () => {
    const MB = 1024 * 1024;
    const cases: ReadonlyArray<readonly [string, string]> = [
      ['repeated sk- prefixes', 'sk-'.repeat(MB / 3)],
      ['sk- then a megabyte of key characters', 'sk-' + 'a'.repeat(MB)],
      ['short sk- runs', 'sk-aaaaaaaaaaaaaaaaaa '.repeat(MB / 22)],
      ['Bearer then a megabyte of spaces', 'Bearer' + ' '.repeat(MB)],
      ['repeated Bearer words', 'Bearer '.repeat(MB / 7)],
      ['api-key then a megabyte of spaces', 'x-api-key:' + ' '.repeat(MB)],
      ['repeated api-key names', 'x-api-key'.repeat(MB / 9)],
      ['AKIA then a megabyte of capitals', 'AKIA' + 'A'.repeat(MB)],
      ['repeated BEGIN markers without labels', '-----BEGIN '.repeat(MB / 11)],
      ['repeated private key headers without END', '-----BEGIN RSA PRIVATE KEY-----'.repeat(MB / 31)],
      ['repeated certificate headers', '-----BEGIN CERTIFICATE-----'.repeat(MB / 27)],
      ['aws secret name then spaces', 'aws_secret_access_key' + ' '.repeat(MB)],
      ['repeated key= parameters running into a bracket', 'key='.repeat(MB / 4) + '['],
      ['a long parameter name without a separator', 'a'.repeat(MB) + 'key'],
      ['repeated key names', 'tokenkeysecret'.repeat(MB / 14)],
      ['repeated URL schemes', 'a://'.repeat(MB / 4)],
      ['a URL with a megabyte of user characters', 'https://' + 'u'.repeat(MB) + ':'],
    ];
    it.each(cases)('%s', (_label, text) => {
      const started = performance.now();
      const out = maskSecrets(text);
      const elapsed = performance.now() - started;
      expect(typeof out).toBe('string');
      // Linear scans of 1 MB take milliseconds; quadratic backtracking would take minutes.
      expect(elapsed).toBeLessThan(1_000);
    });
  });
});

describe('auditErrorMessage', () => {
  it('is the masked message of an Error', () => {
    expect(auditErrorMessage(new Error(`401 Incorrect API key provided: ${OPENAI_PROJECT}`))).toBe(
      '401 Incorrect API key provided: sk-proj-[REDACTED]',
    );
  });

  it('masks SDK errors (OpenAI and Anthropic APIError)', () => {
    const openai = OpenAIAPIError.generate(401, { error: { message: `bad key ${OPENAI_LEGACY}` } }, undefined, new Headers());
    expect(openai.message).toContain(OPENAI_LEGACY);
    expect(auditErrorMessage(openai)).toContain('sk-[REDACTED]');
    expect(auditErrorMessage(openai)).not.toContain(ALNUM);
    const anthropic = AnthropicAPIError.generate(
      401,
      { type: 'error', error: { type: 'authentication_error', message: `invalid x-api-key: ${ANTHROPIC}` } },
      undefined,
      new Headers(),
    );
    expect(auditErrorMessage(anthropic)).not.toContain(ALNUM);
  });

  it('handles non-Error throwables', () => {
    expect(auditErrorMessage(`thrown string with ${OPENAI_LEGACY}`)).toBe('thrown string with sk-[REDACTED]');
    expect(auditErrorMessage({ message: 'object with a message' })).toBe('object with a message');
    expect(auditErrorMessage({ code: 42, detail: `Bearer ${JWT}` })).toBe('{"code":42,"detail":"Bearer [REDACTED]"}');
    expect(auditErrorMessage(null)).toBe('null');
    expect(auditErrorMessage(undefined)).toBe('undefined');
    expect(auditErrorMessage(404)).toBe('404');
    expect(auditErrorMessage(Symbol('boom'))).toBe('Symbol(boom)');
    expect(auditErrorMessage({})).toBe('[object Object]');
  });

  it('falls back to the error name when the message is empty', () => {
    expect(auditErrorMessage(new TypeError(''))).toBe('TypeError');
  });

  it('survives throwables that throw when inspected', () => {
    const hostile = {
      get message(): string {
        throw new Error('no');
      },
    };
    expect(auditErrorMessage(hostile)).toBe('unserializable object thrown');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(auditErrorMessage(cyclic)).toBe('unserializable object thrown');
  });

  it('caps the message at 500 characters, ending with an ellipsis', () => {
    const out = auditErrorMessage(new Error('e'.repeat(2_000)));
    expect(out).toHaveLength(500);
    expect(out.endsWith('…')).toBe(true);
    expect(out.slice(0, 499)).toBe('e'.repeat(499));
  });

  it('keeps a message of exactly 500 characters as is', () => {
    const message = 'm'.repeat(500);
    expect(auditErrorMessage(new Error(message))).toBe(message);
  });

  it('masks before cutting, so a key at the cut cannot leave a readable prefix', () => {
    // Unmasked, the key would straddle character 500 and its first characters would survive.
    const out = auditErrorMessage(new Error(`${'x'.repeat(470)} ${OPENAI_PROJECT} and more`));
    expect(out).toBe(`${'x'.repeat(470)} sk-proj-[REDACTED] and more`);
  });

  it('does not split a surrogate pair at the cut', () => {
    const out = auditErrorMessage(new Error(`${'a'.repeat(498)}😀${'b'.repeat(100)}`));
    expect(out).toBe(`${'a'.repeat(498)}…`);
  });

  it('does not leak part of a key cut by the masking window of a huge message', () => {
    // A private key block collapses to a few characters when masked, pulling text from ~16 KB in
    // into the first 500 characters; the key there is cut by the window after 10 characters.
    const block = `-----BEGIN PRIVATE KEY-----\n${'A'.repeat(16_000)}\n-----END PRIVATE KEY-----`;
    const padding = 16 * 1024 - block.length - 1 - 10;
    const message = `${block}${' '.repeat(padding)} ${OPENAI_PROJECT}`;
    const out = auditErrorMessage(new Error(message));
    expect(out).not.toContain('sk-proj');
    expect(out).not.toContain('AAAA');
  });

  it('is fast on a 10 MB message', () => {
    const started = performance.now();
    const out = auditErrorMessage(new Error(`${OPENAI_LEGACY} `.repeat(200_000)));
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(out).toHaveLength(500);
    expect(out).not.toContain(ALNUM.slice(0, 10));
  });
});

describe('removing the request text from error messages', () => {
  const PROMPT = 'Summarise the contract of Jane Roe, account 4471-XY, "strictly confidential"\nsecond line é';
  const request = { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'You are the bank assistant' }, { role: 'user', content: PROMPT }] };

  it.each([
    ['whole', `Invalid content: ${PROMPT}`],
    ['a truncated prefix', `the content starting "${PROMPT.slice(0, 17)}" is invalid`],
    ['a slice from the middle', `near "${PROMPT.slice(20, 45)}"`],
    ['JSON-escaped', `body: ${JSON.stringify({ content: PROMPT })}`],
    ['JSON-escaped twice (a quoted body inside a JSON SDK message)', JSON.stringify({ message: `body: ${JSON.stringify(PROMPT)}` })],
    ['with non-ASCII as \\uXXXX (Python json.dumps)', `content: ${JSON.stringify(PROMPT).replace('é', '\\u00e9')}`],
    ['URL-encoded', `GET /search?q=${encodeURIComponent(PROMPT)}`],
  ])('removes the prompt quoted %s', (_label, message) => {
    const out = removeRequestText(message, request);
    expect(out).toContain(REQUEST_TEXT_MASK);
    for (let i = 0; i + 8 <= PROMPT.length; i++) expect(out).not.toContain(PROMPT.slice(i, i + 8));
  });

  it('removes the system prompt, a String object and a text inside content parts; keeps the model and the provider words', () => {
    const parts = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: [{ type: 'text', text: 'part text CANARY-1' }] }], user: new String('wrapped CANARY-2') };
    const out = removeRequestText('The model gpt-4o-mini rejected "part text CANARY-1", "wrapped CANARY-2" and "You are the bank assistant"', { ...parts, system: 'You are the bank assistant' });
    expect(out).toBe(`The model gpt-4o-mini rejected "${REQUEST_TEXT_MASK}", "${REQUEST_TEXT_MASK}" and "${REQUEST_TEXT_MASK}"`);
  });

  it('leaves a message that quotes nothing of the request as is, and survives hostile requests', () => {
    expect(removeRequestText('400 max_tokens is too large', request)).toBe('400 max_tokens is too large');
    const cyclic: Record<string, unknown> = { content: 'cyclic CANARY-3 text' };
    cyclic.self = cyclic;
    const hostile = { get content(): string { throw new Error('no'); }, other: 'other CANARY-4 text' };
    expect(removeRequestText('cyclic CANARY-3 text / other CANARY-4 text', { cyclic, hostile })).toBe(`${REQUEST_TEXT_MASK} / ${REQUEST_TEXT_MASK}`);
    // A request too deep to walk whole cannot be scrubbed with certainty: the whole text is withheld.
    let deep: Record<string, unknown> = { content: 'deep CANARY-5 text' };
    for (let i = 0; i < 100; i++) deep = { next: deep };
    expect(removeRequestText('provider says: deep CANARY-5 text', deep)).toBe(REQUEST_TEXT_MASK);
  });

  it('auditErrorMessage: provider type and code first, the quoted request removed, secrets masked (real SDK errors)', () => {
    const openai = OpenAIAPIError.generate(
      400,
      { error: { message: `Invalid prompt "${PROMPT}" at https://api.example/v1?key=AIzaSyDdI0hCZtE6vySjMm`, type: 'invalid_request_error', code: 'invalid_prompt', param: null } },
      undefined,
      new Headers(),
    );
    expect(auditErrorMessage(openai, request)).toBe(`[invalid_request_error/invalid_prompt] 400 Invalid prompt "${REQUEST_TEXT_MASK}" at https://api.example/v1?key=[REDACTED]`);
    const anthropic = AnthropicAPIError.generate(400, { type: 'error', error: { type: 'invalid_request_error', message: `bad: ${PROMPT}` } }, undefined, new Headers());
    const out = auditErrorMessage(anthropic, request);
    expect(out.startsWith('[invalid_request_error] 400 {"type":"error"')).toBe(true);
    expect(out).toContain(REQUEST_TEXT_MASK);
    expect(out).not.toContain('Jane Roe');
    // @anthropic-ai/sdk 0.x keeps only the body (`error.error.type`), no `type` field of its own.
    const body = { type: 'error', error: { type: 'overloaded_error', message: `busy with ${PROMPT}` } };
    const anthropic0 = Object.assign(new Error(`529 ${JSON.stringify(body)}`), { status: 529, error: body });
    expect(auditErrorMessage(anthropic0, request).startsWith('[overloaded_error] 529 {')).toBe(true);
    expect(auditErrorMessage(anthropic0, request)).not.toContain('Jane Roe');
    // A provider code that is itself a piece of the request is left out.
    const echoed = Object.assign(new Error('failed'), { code: 'Jane_Roe_account' });
    expect(auditErrorMessage(echoed, { content: 'about Jane_Roe_account today' })).toBe('failed');
  });

  it('scrubText (block reasons, log lines) removes the request text and masks secrets', () => {
    expect(scrubText(`blocked: found "${PROMPT.slice(0, 30)}" with sk-${'a1'.repeat(12)}`, request)).toBe(`blocked: found "${REQUEST_TEXT_MASK}" with sk-[REDACTED]`);
  });

  it('takes well under a second for a 1 MB request quoted in a 16 KB message', () => {
    const words = Array.from({ length: 120_000 }, (_, i) => `word${i.toString(36)} `).join('');
    const started = performance.now();
    const out = auditErrorMessage(new Error(`x ${words.slice(500_000, 516_000)}`), { messages: [{ role: 'user', content: words }] });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(out).toBe(`x ${REQUEST_TEXT_MASK}`);
  });
});

describe('errorType', () => {
  it("is the provider's code when it sent one: the more specific code, else the type", () => {
    const quota = OpenAIAPIError.generate(429, { error: { message: 'quota', type: 'insufficient_quota', code: 'insufficient_quota' } }, undefined, new Headers());
    expect(errorType(quota)).toBe('insufficient_quota');
    const tooLong = OpenAIAPIError.generate(400, { error: { type: 'invalid_request_error', code: 'context_length_exceeded' } }, undefined, new Headers());
    expect(errorType(tooLong)).toBe('context_length_exceeded');
    const invalid = OpenAIAPIError.generate(400, { error: { type: 'invalid_request_error', code: null } }, undefined, new Headers());
    expect(errorType(invalid)).toBe('invalid_request_error');
    const overloaded = AnthropicAPIError.generate(529, { type: 'error', error: { type: 'overloaded_error' } }, undefined, new Headers());
    expect(errorType(overloaded)).toBe('overloaded_error');
  });

  it("is the status code of an API error without a provider code, never the SDK's class name", () => {
    const rateLimited = OpenAIAPIError.generate(429, { error: { message: 'slow down' } }, undefined, new Headers());
    expect(rateLimited.constructor.name).toBe('RateLimitError');
    expect(errorType(rateLimited)).toBe('429');
  });

  it('leaves out a provider code that quotes the request, and a code on an error that is not from the provider', () => {
    const request = { messages: [{ role: 'user', content: 'secret_project_name' }] };
    const quoting = OpenAIAPIError.generate(400, { error: { type: 'secret_project_name' } }, undefined, new Headers());
    expect(errorType(quoting, request)).toBe('400');
    expect(errorType(Object.assign(new Error('refused'), { name: 'LlmAuditUnavailableError', code: 'LLM_AUDIT_UNAVAILABLE' }))).toBe('LlmAuditUnavailableError');
  });

  it('is the status code when the class says nothing more than APIError', () => {
    const teapot = OpenAIAPIError.generate(418, { error: { message: 'teapot' } }, undefined, new Headers());
    expect(teapot.constructor.name).toBe('APIError');
    expect(errorType(teapot)).toBe('418');
    expect(errorType({ status: 503 })).toBe('503');
    expect(errorType({ statusCode: 502 })).toBe('502');
  });

  it('is the name of built-in errors and named errors', () => {
    expect(errorType(new TypeError('x'))).toBe('TypeError');
    expect(errorType(new RangeError('x'))).toBe('RangeError');
    const abort = new Error('aborted');
    abort.name = 'AbortError';
    expect(errorType(abort)).toBe('AbortError');
    class TimeoutError extends Error {}
    expect(errorType(new TimeoutError('t'))).toBe('TimeoutError');
  });

  it('is a Node error code for system errors', () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(errorType(reset)).toBe('ECONNRESET');
  });

  it('is "Error" for a plain Error', () => {
    expect(errorType(new Error('x'))).toBe('Error');
  });

  it('ignores names that are not identifiers (keeps cardinality low)', () => {
    const noisy = new Error('x');
    noisy.name = 'Request failed for user 12345 at 10:32';
    expect(errorType(noisy)).toBe('Error');
  });

  it.each([
    ['a string', 'boom'],
    ['null', null],
    ['undefined', undefined],
    ['a number', 42],
    ['an empty object', {}],
    ['an out-of-range status', { status: 42 }],
  ])('is _OTHER for %s', (_label, thrown) => {
    expect(errorType(thrown)).toBe('_OTHER');
  });

  it('is _OTHER for a throwable whose getters throw', () => {
    const hostile = Object.create(null, {
      name: {
        get() {
          throw new Error('no');
        },
      },
    }) as object;
    expect(errorType(hostile)).toBe('_OTHER');
  });
});
