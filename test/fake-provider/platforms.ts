// The cloud platforms that serve the two APIs under their own URLs and wire details:
// Azure OpenAI (/openai/deployments/<name>/...), Amazon Bedrock (/model/<id>/invoke[-with-response-stream],
// AWS event-stream framing, AWS-shaped errors) and Google Vertex AI (.../models/<model>:rawPredict |
// :streamRawPredict). Each maps to the provider format whose bodies it carries.
import { randomUUID } from 'node:crypto';
import { chunkMessage, exceptionMessage } from './eventstream';
import type { ErrorSpec } from './format';
import type { Platform, ProviderName } from './types';

export interface Route {
  /** The API family whose request and response bodies the platform carries. */
  provider: ProviderName;
  platform?: Platform;
  /** The path of the same endpoint in the provider's own API ("/v1/chat/completions", "/v1/messages"). */
  endpointPath: string;
  /** The model the URL names (Bedrock model id, Vertex model, Azure deployment). */
  urlModel?: string;
  /** Streaming asked for by the URL (Bedrock's invoke-with-response-stream, Vertex's streamRawPredict). */
  urlStream?: boolean;
}

const AZURE_DEPLOYMENT = /^\/openai\/deployments\/([^/]+)(\/.+)$/;
const AZURE_OTHER = /^\/openai(?:\/v1)?(\/.+)$/;
const BEDROCK = /^\/model\/([^/]+)\/(invoke|invoke-with-response-stream)$/;
const VERTEX = /\/projects\/[^/]+\/locations\/[^/]+\/publishers\/anthropic\/models\/([^/:]+):(rawPredict|streamRawPredict)$/;

export function routeOf(path: string): Route {
  let m = AZURE_DEPLOYMENT.exec(path);
  if (m) return { provider: 'openai', platform: 'azure', endpointPath: `/v1${m[2]}`, urlModel: decodeURIComponent(m[1]!) };
  m = AZURE_OTHER.exec(path);
  if (m) return { provider: 'openai', platform: 'azure', endpointPath: `/v1${m[1]}` };
  m = BEDROCK.exec(path);
  if (m) {
    return {
      provider: 'anthropic',
      platform: 'bedrock',
      endpointPath: '/v1/messages',
      urlModel: decodeURIComponent(m[1]!),
      urlStream: m[2] === 'invoke-with-response-stream',
    };
  }
  m = VERTEX.exec(path);
  if (m) {
    const model = decodeURIComponent(m[1]!);
    if (model === 'count-tokens') return { provider: 'anthropic', platform: 'vertex', endpointPath: '/v1/messages/count_tokens' };
    return {
      provider: 'anthropic',
      platform: 'vertex',
      endpointPath: '/v1/messages',
      urlModel: model,
      ...(m[2] === 'streamRawPredict' ? { urlStream: true } : {}),
    };
  }
  return { provider: path.startsWith('/v1/messages') ? 'anthropic' : 'openai', endpointPath: path };
}

/** How a platform's answers differ on the wire from the provider's own. */
export interface Wire {
  /** Replaces the provider's per-answer headers (request id, rate limits). */
  headers?(providerHeaders: Record<string, string>): Record<string, string>;
  /** Replaces the provider's error body, with headers of its own. */
  error?(status: number, spec: ErrorSpec): { body: unknown; headers: Record<string, string> };
  /** A binary stream framing in place of SSE: the content type and each SSE frame re-encoded. */
  stream?: { contentType: string; encode(sseFrames: string): Buffer };
}

const BEDROCK_ERRORS: Record<number, [string, string]> = {
  400: ['ValidationException', 'Malformed input request, please reformat your input and try again.'],
  403: ['AccessDeniedException', 'You don\'t have access to the model with the specified model ID.'],
  404: ['ResourceNotFoundException', 'The requested resource could not be found.'],
  408: ['ModelTimeoutException', 'Model has timed out in processing the request.'],
  429: ['ThrottlingException', 'Too many requests, please wait before trying again.'],
  503: ['ServiceUnavailableException', 'Bedrock is unable to process your request.'],
};

/** The event-stream exception a Bedrock stream sends for an Anthropic error type. */
function bedrockException(type: string | undefined): string {
  if (type === 'rate_limit_error') return 'throttlingException';
  if (type === 'overloaded_error') return 'serviceUnavailableException';
  return 'internalServerException';
}

/** Each `event: x\ndata: {...}\n\n` frame of an Anthropic stream as one event-stream message. */
function bedrockFrames(sse: string): Buffer {
  const out: Buffer[] = [];
  for (const frame of sse.split('\n\n')) {
    const data = frame.split('\n').find((line) => line.startsWith('data: '));
    if (!data) continue;
    const json = data.slice('data: '.length);
    const event = JSON.parse(json);
    out.push(event?.type === 'error' ? exceptionMessage(bedrockException(event.error?.type), event.error?.message ?? 'Internal error') : chunkMessage(json));
  }
  return Buffer.concat(out);
}

const WIRES: Record<Platform, Wire> = {
  azure: {
    headers: (h) => ({ ...h, 'apim-request-id': randomUUID(), 'x-ms-region': 'East US' }),
  },
  bedrock: {
    headers: () => ({ 'x-amzn-requestid': randomUUID(), 'x-amzn-bedrock-invocation-latency': '1' }),
    error(status, spec) {
      const [type, message] = BEDROCK_ERRORS[status] ?? (status >= 500 ? ['InternalServerException', 'Internal server error'] : ['ValidationException', `Request failed with status ${status}.`]);
      return { body: { message: spec.message ?? message }, headers: { 'x-amzn-errortype': `${spec.errorType ?? type}:http://internal.amazon.com/coral/com.amazon.bedrock/` } };
    },
    stream: { contentType: 'application/vnd.amazon.eventstream', encode: bedrockFrames },
  },
  vertex: {},
};

export function wireOf(platform: Platform | undefined): Wire {
  return platform ? WIRES[platform] : {};
}
