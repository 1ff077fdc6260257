import type { ResponseDefaults } from './types';
import {
  type Endpoint,
  type ErrorSpec,
  type ProviderFormat,
  type StreamBody,
  pieces,
  randomId,
  sseEvent,
} from './format';

// ---------------------------------------------------------------- errors

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  408: 'timeout_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

const ERROR_MESSAGES: Record<string, string> = {
  invalid_request_error: 'Invalid request.',
  authentication_error: 'invalid x-api-key',
  billing_error: 'Your credit balance is too low to access the Anthropic API.',
  permission_error: 'Your API key does not have permission to use the specified resource.',
  not_found_error: 'The requested resource could not be found.',
  timeout_error: 'Request timed out.',
  request_too_large: 'Request exceeds the maximum allowed number of bytes.',
  rate_limit_error: 'Number of request tokens has exceeded your per-minute rate limit.',
  api_error: 'Internal server error',
  overloaded_error: 'Overloaded',
};

function errorObject(type: string, message: string | undefined) {
  return { type, message: message ?? ERROR_MESSAGES[type] ?? `Request failed (${type}).` };
}

function errorBody(status: number, spec: ErrorSpec): unknown {
  if (spec.errorCode === 'context_length_exceeded') {
    return {
      type: 'error',
      error: {
        type: spec.errorType ?? 'invalid_request_error',
        message: spec.message ?? 'prompt is too long: 250000 tokens > 200000 maximum',
      },
    };
  }
  const type = spec.errorType ?? ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
  const error: Record<string, unknown> = errorObject(type, spec.message);
  // The SDK reads error.details.error_code into err.errorCode (and picks specialised classes from it).
  if (spec.errorCode) error['details'] = { error_code: spec.errorCode };
  return { type: 'error', error };
}

// ---------------------------------------------------------------- /v1/messages

function usage(d: ResponseDefaults, outputTokens = d.outputTokens) {
  return {
    input_tokens: d.inputTokens,
    cache_creation_input_tokens: d.cacheCreationTokens,
    cache_read_input_tokens: d.cacheReadTokens,
    cache_creation: { ephemeral_5m_input_tokens: d.cacheCreationTokens, ephemeral_1h_input_tokens: 0 },
    output_tokens: outputTokens,
    output_tokens_details: d.reasoningTokens > 0 ? { thinking_tokens: d.reasoningTokens } : null,
    server_tool_use: null,
    service_tier: 'standard',
  };
}

function hasToolResult(messages: unknown): boolean {
  if (!Array.isArray(messages)) return false;
  return messages.some(
    (m: any) => Array.isArray(m?.content) && m.content.some((block: any) => block?.type === 'tool_result'),
  );
}

/** The tool to call, or undefined when the answer should be text. */
function pickTool(body: any): string | undefined {
  const tools: unknown = body?.tools;
  if (!Array.isArray(tools) || tools.length === 0 || body.tool_choice?.type === 'none') return undefined;
  if (hasToolResult(body.messages)) return undefined;
  if (body.tool_choice?.type === 'tool' && typeof body.tool_choice.name === 'string') return body.tool_choice.name;
  // Client tools have no type or type "custom"; server tools (web_search_...) are skipped.
  const first = tools.find((t: any) => typeof t?.name === 'string' && (t.type === undefined || t.type === 'custom'));
  return first?.name;
}

function wantsJsonSchema(body: any): boolean {
  return body?.output_config?.format?.type === 'json_schema' || body?.output_format?.type === 'json_schema';
}

function baseMessage(id: string, model: string) {
  return {
    id,
    type: 'message',
    role: 'assistant',
    model,
    stop_sequence: null,
    stop_details: null,
    container: null,
  };
}

const messages: Endpoint = {
  json(info) {
    const tool = pickTool(info.body);
    const content = tool
      ? [{ type: 'tool_use', id: `toolu_${randomId()}`, name: tool, input: {} }]
      : [{ type: 'text', text: pieces(wantsJsonSchema(info.body), info.defaults.chunks).full(), citations: null }];
    return {
      ...baseMessage(`msg_${randomId()}`, info.model),
      content,
      stop_reason: tool ? 'tool_use' : 'end_turn',
      usage: usage(info.defaults),
    };
  },

  stream(info): StreamBody {
    const id = `msg_${randomId()}`;
    const tool = pickTool(info.body);
    const content = pieces(wantsJsonSchema(info.body), info.defaults.chunks);
    const d = info.defaults;
    return {
      count: tool ? 1 : content.count,
      head: () => [
        sseEvent('message_start', {
          type: 'message_start',
          message: { ...baseMessage(id, info.model), content: [], stop_reason: null, usage: usage(d, 1) },
        }),
        sseEvent('content_block_start', {
          type: 'content_block_start',
          index: 0,
          content_block: tool
            ? { type: 'tool_use', id: `toolu_${randomId()}`, name: tool, input: {} }
            : { type: 'text', text: '' },
        }),
        sseEvent('ping', { type: 'ping' }),
      ],
      chunk: (k) =>
        sseEvent('content_block_delta', {
          type: 'content_block_delta',
          index: 0,
          delta: tool ? { type: 'input_json_delta', partial_json: '{}' } : { type: 'text_delta', text: content.piece(k) },
        }),
      tail: () => [
        sseEvent('content_block_stop', { type: 'content_block_stop', index: 0 }),
        sseEvent('message_delta', {
          type: 'message_delta',
          delta: { stop_reason: tool ? 'tool_use' : 'end_turn', stop_sequence: null, stop_details: null },
          usage: {
            input_tokens: d.inputTokens,
            cache_creation_input_tokens: d.cacheCreationTokens,
            cache_read_input_tokens: d.cacheReadTokens,
            output_tokens: d.outputTokens,
            output_tokens_details: d.reasoningTokens > 0 ? { thinking_tokens: d.reasoningTokens } : null,
            server_tool_use: null,
          },
        }),
        sseEvent('message_stop', { type: 'message_stop' }),
      ],
      error: (type, message) =>
        sseEvent('error', { type: 'error', error: errorObject(type ?? 'overloaded_error', message) }),
    };
  },
};

const countTokens: Endpoint = {
  json: (info) => ({ input_tokens: info.defaults.inputTokens }),
};

function batchObject(id: string, processing: number) {
  const created = new Date();
  return {
    id,
    type: 'message_batch',
    processing_status: 'in_progress',
    request_counts: { processing, succeeded: 0, errored: 0, canceled: 0, expired: 0 },
    ended_at: null,
    created_at: created.toISOString(),
    expires_at: new Date(created.getTime() + 24 * 3600 * 1000).toISOString(),
    archived_at: null,
    cancel_initiated_at: null,
    results_url: null,
  };
}

const createBatch: Endpoint = {
  json: (info) =>
    batchObject(`msgbatch_${randomId()}`, Array.isArray(info.body?.requests) ? info.body.requests.length : 0),
};

const retrieveBatch: Endpoint = {
  json: (info) => batchObject(info.path.slice(info.path.lastIndexOf('/') + 1), 0),
};

// ---------------------------------------------------------------- format

function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const REQUEST_LIMIT = 4_000;
const TOKEN_LIMIT = 400_000;

export function createAnthropicFormat(): ProviderFormat {
  let served = 0;
  return {
    endpoint(method, path) {
      if (method === 'POST') {
        if (path === '/v1/messages') return messages;
        if (path === '/v1/messages/count_tokens') return countTokens;
        if (path === '/v1/messages/batches') return createBatch;
      }
      if (method === 'GET' && /^\/v1\/messages\/batches\/[^/]+$/.test(path)) return retrieveBatch;
      return undefined;
    },
    errorBody,
    headers() {
      served += 1;
      const reset = rfc3339(Date.now() + 1000);
      const headers: Record<string, string> = {
        'request-id': `req_${randomId(12)}`,
        'anthropic-ratelimit-requests-limit': String(REQUEST_LIMIT),
        'anthropic-ratelimit-requests-remaining': String(REQUEST_LIMIT - (served % REQUEST_LIMIT)),
        'anthropic-ratelimit-requests-reset': reset,
      };
      for (const kind of ['tokens', 'input-tokens', 'output-tokens']) {
        headers[`anthropic-ratelimit-${kind}-limit`] = String(TOKEN_LIMIT);
        headers[`anthropic-ratelimit-${kind}-remaining`] = String(TOKEN_LIMIT - 1000);
        headers[`anthropic-ratelimit-${kind}-reset`] = reset;
      }
      return headers;
    },
  };
}
