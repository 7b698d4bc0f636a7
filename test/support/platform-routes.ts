/**
 * The cloud platforms' URL shapes for the fake provider: the same OpenAI and Anthropic APIs, reached
 * the way Azure OpenAI, Amazon Bedrock and Google Vertex AI serve them. Each maps to the fake's
 * canonical route; what differs on the wire is handled here.
 *
 * - Azure OpenAI: POST /openai/deployments/<deployment>/chat/completions?api-version=...
 *   (and /embeddings; /openai/responses takes the deployment as the body's model). Without
 *   `api-version` the fake answers 400.
 * - Bedrock: POST /model/<model id>/invoke and /model/<model id>/invoke-with-response-stream. The
 *   model is in the path (the body has `anthropic_version` instead); a stream comes as AWS
 *   event-stream frames (`application/vnd.amazon.eventstream`), each event an `:event-type: chunk`
 *   message whose payload is `{"bytes": "<base64 of the Anthropic event JSON>"}`, encoded with
 *   @smithy/eventstream-codec.
 * - Vertex AI: POST /v1/projects/<project>/locations/<region>/publishers/anthropic/models/<model>:rawPredict
 *   and :streamRawPredict (an ordinary Anthropic SSE stream).
 */
import { EventStreamCodec } from '@smithy/eventstream-codec';

export interface PlatformRoute {
  /** The fake's canonical route this request is served by. */
  route: '/v1/chat/completions' | '/v1/embeddings' | '/v1/responses' | '/v1/messages';
  /** The request body as the canonical route expects it. */
  body(body: any): any;
  /** Stream framing other than SSE. */
  framing?: 'aws-eventstream';
  /** Why the platform would refuse the request, if it would (answered with a 400 in the provider's shape). */
  refusal(body: any): string | undefined;
}

const AZURE = /^\/openai\/(?:deployments\/([^/]+)\/(chat\/completions|embeddings)|(responses))$/;
const BEDROCK = /^\/model\/([^/]+)\/(invoke|invoke-with-response-stream)$/;
const VERTEX = /^\/v1\/projects\/[^/]+\/locations\/[^/]+\/publishers\/anthropic\/models\/([^/:]+):(rawPredict|streamRawPredict)$/;

/** The platform route of a POST to `path`, or undefined for a canonical (or unknown) path. */
export function platformRoute(path: string, query: URLSearchParams): PlatformRoute | undefined {
  let match = AZURE.exec(path);
  if (match !== null) {
    return {
      route: match[3] === 'responses' ? '/v1/responses' : match[2] === 'embeddings' ? '/v1/embeddings' : '/v1/chat/completions',
      body: (body) => body,
      refusal: () => (query.get('api-version') ? undefined : 'Azure OpenAI needs the api-version query parameter'),
    };
  }
  match = BEDROCK.exec(path);
  if (match !== null) {
    const model = decodeURIComponent(match[1]!);
    const stream = match[2] === 'invoke-with-response-stream';
    return {
      route: '/v1/messages',
      body: (body) => ({ ...body, model, stream }),
      framing: stream ? 'aws-eventstream' : undefined,
      refusal: (body) => (typeof body?.anthropic_version === 'string' ? undefined : 'Bedrock needs anthropic_version in the body'),
    };
  }
  match = VERTEX.exec(path);
  if (match !== null) {
    const model = decodeURIComponent(match[1]!);
    const stream = match[2] === 'streamRawPredict';
    return {
      route: '/v1/messages',
      body: (body) => ({ ...body, model, stream }),
      refusal: (body) => (typeof body?.anthropic_version === 'string' ? undefined : 'Vertex AI needs anthropic_version in the body'),
    };
  }
  return undefined;
}

const codec = new EventStreamCodec(
  (bytes: Uint8Array) => new TextDecoder().decode(bytes),
  (text: string) => new TextEncoder().encode(text),
);

/** One SSE event's JSON payload as a Bedrock event-stream message. */
export function bedrockChunk(json: string): Uint8Array {
  const payload = JSON.stringify({ bytes: Buffer.from(json, 'utf8').toString('base64') });
  return codec.encode({
    headers: {
      ':event-type': { type: 'string', value: 'chunk' },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: 'event' },
    },
    body: new TextEncoder().encode(payload),
  });
}

/**
 * A `fetch` for an SDK client's `fetch` option that sends what the client addresses to `origin`
 * (a provider's real host, e.g. https://myres.openai.azure.com) to the loopback fake instead: the
 * client, and so the audit, sees the real host; no request leaves the machine.
 */
export function redirectFetch(origin: string, fakeUrl: string): typeof fetch {
  return (input: any, init?: any) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.startsWith(origin)) return Promise.reject(new Error(`test fetch: ${url} is not under ${origin}`));
    return fetch(fakeUrl + url.slice(origin.length), init);
  };
}
