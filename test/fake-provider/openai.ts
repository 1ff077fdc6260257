import type { ResponseDefaults } from './types';
import {
  type Endpoint,
  type ErrorSpec,
  type ProviderFormat,
  type RequestInfo,
  type StreamBody,
  nowSeconds,
  pieces,
  randomId,
  sseData,
  sseEvent,
} from './format';

const SYSTEM_FINGERPRINT = 'fp_fake';

// ---------------------------------------------------------------- errors

interface OpenAIErrorDefaults {
  type: string;
  code: string | null;
  param: string | null;
  message: string;
}

function errorDefaults(status: number, errorCode: string | undefined): OpenAIErrorDefaults {
  if (errorCode === 'context_length_exceeded') {
    return {
      type: 'invalid_request_error',
      code: errorCode,
      param: 'messages',
      message:
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.",
    };
  }
  switch (status) {
    case 400:
      return { type: 'invalid_request_error', code: null, param: null, message: 'Invalid request.' };
    case 401:
      return {
        type: 'invalid_request_error',
        code: 'invalid_api_key',
        param: null,
        message: 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
      };
    case 403:
      return { type: 'invalid_request_error', code: 'permission_denied', param: null, message: 'You are not allowed to perform this request.' };
    case 404:
      return { type: 'invalid_request_error', code: 'not_found', param: null, message: 'The requested resource does not exist.' };
    case 429:
      return { type: 'requests', code: 'rate_limit_exceeded', param: null, message: 'Rate limit reached for requests. Please try again later.' };
    case 503:
      return { type: 'server_error', code: null, param: null, message: 'The engine is currently overloaded, please try again later.' };
    case 529:
      return { type: 'overloaded_error', code: null, param: null, message: 'The server is overloaded, please try again later.' };
  }
  if (status >= 500) {
    return {
      type: 'server_error',
      code: null,
      param: null,
      message: 'The server had an error while processing your request. Sorry about that!',
    };
  }
  return { type: 'invalid_request_error', code: null, param: null, message: `Request failed with status ${status}.` };
}

function errorBody(status: number, spec: ErrorSpec): unknown {
  const d = errorDefaults(status, spec.errorCode);
  return {
    error: {
      message: spec.message ?? d.message,
      type: spec.errorType ?? d.type,
      param: d.param,
      code: spec.errorCode ?? d.code,
    },
  };
}

// ---------------------------------------------------------------- shared helpers

function chatUsage(d: ResponseDefaults) {
  return {
    prompt_tokens: d.inputTokens,
    completion_tokens: d.outputTokens,
    total_tokens: d.inputTokens + d.outputTokens,
    prompt_tokens_details: { cached_tokens: d.cacheReadTokens, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: d.reasoningTokens,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function choiceCount(n: unknown): number {
  return typeof n === 'number' && Number.isInteger(n) && n > 1 ? Math.min(n, 128) : 1;
}

/** The function to call, or undefined when the answer should be text. */
function pickChatTool(body: any): string | undefined {
  const tools: unknown = body?.tools;
  if (!Array.isArray(tools) || tools.length === 0 || body.tool_choice === 'none') return undefined;
  const messages: unknown = body.messages;
  if (Array.isArray(messages) && messages.some((m: any) => m?.role === 'tool')) return undefined;
  const forced = body.tool_choice?.function?.name;
  if (typeof forced === 'string') return forced;
  const first = tools.find((t: any) => t?.type === 'function' && typeof t.function?.name === 'string');
  return first?.function.name;
}

function wantsJsonSchema(format: any): boolean {
  return format?.type === 'json_schema';
}

function includeUsage(body: any): boolean {
  return body?.stream_options?.include_usage === true;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

// ---------------------------------------------------------------- /chat/completions

const chatCompletions: Endpoint = {
  json(info) {
    const b = info.body ?? {};
    const tool = pickChatTool(b);
    const text = pieces(wantsJsonSchema(b.response_format), info.defaults.chunks).full();
    return {
      id: `chatcmpl-${randomId()}`,
      object: 'chat.completion',
      created: nowSeconds(),
      model: info.model,
      choices: range(choiceCount(b.n)).map((index) => ({
        index,
        message: tool
          ? {
              role: 'assistant',
              content: null,
              refusal: null,
              annotations: [],
              tool_calls: [{ id: `call_${randomId()}`, type: 'function', function: { name: tool, arguments: '{}' } }],
            }
          : { role: 'assistant', content: text, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: tool ? 'tool_calls' : 'stop',
      })),
      usage: chatUsage(info.defaults),
      service_tier: 'default',
      system_fingerprint: SYSTEM_FINGERPRINT,
    };
  },

  stream(info): StreamBody {
    const b = info.body ?? {};
    const id = `chatcmpl-${randomId()}`;
    const created = nowSeconds();
    const n = choiceCount(b.n);
    const tool = pickChatTool(b);
    const withUsage = includeUsage(b);
    const content = pieces(wantsJsonSchema(b.response_format), info.defaults.chunks);
    // With include_usage every chunk carries `usage: null` except the final usage-only chunk.
    const frame = (choices: unknown[], usage?: unknown) =>
      sseData({
        id,
        object: 'chat.completion.chunk',
        created,
        model: info.model,
        service_tier: 'default',
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices,
        ...(withUsage ? { usage: usage ?? null } : {}),
      });
    const choice = (index: number, delta: object, finish_reason: string | null = null) => ({
      index,
      delta,
      logprobs: null,
      finish_reason,
    });
    return {
      count: tool ? 1 : content.count,
      head: () =>
        range(n).map((i) =>
          frame([
            choice(
              i,
              tool
                ? {
                    role: 'assistant',
                    content: null,
                    tool_calls: [{ index: 0, id: `call_${randomId()}`, type: 'function', function: { name: tool, arguments: '' } }],
                  }
                : { role: 'assistant', content: '', refusal: null },
            ),
          ]),
        ),
      chunk: (k) => {
        const delta = tool ? { tool_calls: [{ index: 0, function: { arguments: '{}' } }] } : { content: content.piece(k) };
        let out = '';
        for (let i = 0; i < n; i++) out += frame([choice(i, delta)]);
        return out;
      },
      tail: () => [
        ...range(n).map((i) => frame([choice(i, {}, tool ? 'tool_calls' : 'stop')])),
        ...(withUsage ? [frame([], chatUsage(info.defaults))] : []),
        'data: [DONE]\n\n',
      ],
      error: (type, message) => sseData(errorBody(500, { errorType: type, message })),
    };
  },
};

// ---------------------------------------------------------------- /responses

function responsesUsage(d: ResponseDefaults) {
  return {
    input_tokens: d.inputTokens,
    input_tokens_details: { cached_tokens: d.cacheReadTokens },
    output_tokens: d.outputTokens,
    output_tokens_details: { reasoning_tokens: d.reasoningTokens },
    total_tokens: d.inputTokens + d.outputTokens,
  };
}

function responseObject(info: RequestInfo, id: string, createdAt: number, status: string, output: unknown[], usage: unknown) {
  const b = info.body ?? {};
  return {
    id,
    object: 'response',
    created_at: createdAt,
    status,
    background: false,
    completed_at: status === 'completed' ? nowSeconds() : null,
    error: null,
    incomplete_details: null,
    instructions: b.instructions ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    max_tool_calls: null,
    model: info.model,
    output,
    parallel_tool_calls: true,
    previous_response_id: b.previous_response_id ?? null,
    prompt_cache_key: null,
    reasoning: { effort: null, summary: null },
    safety_identifier: null,
    service_tier: 'default',
    store: b.store ?? true,
    temperature: b.temperature ?? 1,
    text: { format: b.text?.format ?? { type: 'text' }, verbosity: 'medium' },
    tool_choice: b.tool_choice ?? 'auto',
    tools: Array.isArray(b.tools) ? b.tools : [],
    top_logprobs: 0,
    top_p: b.top_p ?? 1,
    truncation: 'disabled',
    usage,
    user: null,
    metadata: b.metadata ?? {},
  };
}

function outputText(text: string) {
  return { type: 'output_text', annotations: [], logprobs: [], text };
}

function messageItem(id: string, status: string, content: unknown[]) {
  return { id, type: 'message', status, content, role: 'assistant' };
}

const responses: Endpoint = {
  json(info) {
    const text = pieces(wantsJsonSchema(info.body?.text?.format), info.defaults.chunks).full();
    return responseObject(
      info,
      `resp_${randomId(24)}`,
      nowSeconds(),
      'completed',
      [messageItem(`msg_${randomId(24)}`, 'completed', [outputText(text)])],
      responsesUsage(info.defaults),
    );
  },

  stream(info): StreamBody {
    const id = `resp_${randomId(24)}`;
    const itemId = `msg_${randomId(24)}`;
    const createdAt = nowSeconds();
    const content = pieces(wantsJsonSchema(info.body?.text?.format), info.defaults.chunks);
    let seq = 0;
    const ev = (type: string, fields: object) => sseEvent(type, { type, sequence_number: seq++, ...fields });
    const at = { item_id: itemId, output_index: 0, content_index: 0 };
    return {
      count: content.count,
      head: () => [
        ev('response.created', { response: responseObject(info, id, createdAt, 'in_progress', [], null) }),
        ev('response.in_progress', { response: responseObject(info, id, createdAt, 'in_progress', [], null) }),
        ev('response.output_item.added', { output_index: 0, item: messageItem(itemId, 'in_progress', []) }),
        ev('response.content_part.added', { ...at, part: outputText('') }),
      ],
      chunk: (k) => ev('response.output_text.delta', { ...at, delta: content.piece(k), logprobs: [] }),
      tail: () => {
        const text = content.full();
        const item = messageItem(itemId, 'completed', [outputText(text)]);
        return [
          ev('response.output_text.done', { ...at, text, logprobs: [] }),
          ev('response.content_part.done', { ...at, part: outputText(text) }),
          ev('response.output_item.done', { output_index: 0, item }),
          ev('response.completed', {
            response: responseObject(info, id, createdAt, 'completed', [item], responsesUsage(info.defaults)),
          }),
        ];
      },
      error: (type, message) =>
        ev('error', {
          code: type ?? 'server_error',
          message: message ?? 'The server had an error while processing your request. Sorry about that!',
          param: null,
        }),
    };
  },
};

// ---------------------------------------------------------------- /embeddings

const EMBEDDING_DIMS = 8;

function embeddingInputs(input: unknown): string[] {
  if (typeof input === 'string') return [input];
  if (Array.isArray(input)) {
    if (input.length > 0 && input.every((x) => typeof x === 'number')) return [input.join(',')];
    return input.map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
  }
  return [''];
}

/** A deterministic unit vector derived from the input text and its position. */
function embed(text: string, index: number): number[] {
  let h = 2166136261 ^ index;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  const v = Array.from({ length: EMBEDDING_DIMS }, (_, k) => Math.sin((h >>> 0) * 1e-6 + k + 1));
  const norm = Math.hypot(...v) || 1;
  // fround so the float and base64 encodings carry the same values
  return v.map((x) => Math.fround(x / norm));
}

const embeddings: Endpoint = {
  json(info) {
    const b = info.body ?? {};
    const base64 = b.encoding_format === 'base64';
    return {
      object: 'list',
      // The SDK asks for base64 unless the caller sets encoding_format, then decodes it itself.
      data: embeddingInputs(b.input).map((text, index) => {
        const vec = embed(text, index);
        return {
          object: 'embedding',
          index,
          embedding: base64 ? Buffer.from(new Float32Array(vec).buffer).toString('base64') : vec,
        };
      }),
      model: info.model,
      usage: { prompt_tokens: info.defaults.inputTokens, total_tokens: info.defaults.inputTokens },
    };
  },
};

// ---------------------------------------------------------------- /completions (legacy)

function completionUsage(d: ResponseDefaults) {
  return { prompt_tokens: d.inputTokens, completion_tokens: d.outputTokens, total_tokens: d.inputTokens + d.outputTokens };
}

const completions: Endpoint = {
  json(info) {
    const text = pieces(false, info.defaults.chunks).full();
    return {
      id: `cmpl-${randomId()}`,
      object: 'text_completion',
      created: nowSeconds(),
      model: info.model,
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices: range(choiceCount(info.body?.n)).map((index) => ({ text, index, logprobs: null, finish_reason: 'stop' })),
      usage: completionUsage(info.defaults),
    };
  },

  stream(info): StreamBody {
    const id = `cmpl-${randomId()}`;
    const created = nowSeconds();
    const n = choiceCount(info.body?.n);
    const withUsage = includeUsage(info.body);
    const content = pieces(false, info.defaults.chunks);
    const frame = (choices: unknown[], usage?: unknown) =>
      sseData({
        id,
        object: 'text_completion',
        created,
        model: info.model,
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices,
        ...(withUsage ? { usage: usage ?? null } : {}),
      });
    const choice = (index: number, text: string, finish_reason: string | null = null) => ({ text, index, logprobs: null, finish_reason });
    return {
      count: content.count,
      head: () => [],
      chunk: (k) => {
        let out = '';
        for (let i = 0; i < n; i++) out += frame([choice(i, content.piece(k))]);
        return out;
      },
      tail: () => [
        ...range(n).map((i) => frame([choice(i, '', 'stop')])),
        ...(withUsage ? [frame([], completionUsage(info.defaults))] : []),
        'data: [DONE]\n\n',
      ],
      error: (type, message) => sseData(errorBody(500, { errorType: type, message })),
    };
  },
};

// ---------------------------------------------------------------- format

const ENDPOINTS: Record<string, Endpoint> = {
  '/v1/chat/completions': chatCompletions,
  '/v1/responses': responses,
  '/v1/embeddings': embeddings,
  '/v1/completions': completions,
};

const REQUEST_LIMIT = 10_000;
const TOKEN_LIMIT = 2_000_000;

export function createOpenAIFormat(): ProviderFormat {
  let served = 0;
  return {
    endpoint: (method, path) => (method === 'POST' ? ENDPOINTS[path] : undefined),
    errorBody,
    headers() {
      served += 1;
      return {
        'x-request-id': `req_${randomId(16)}`,
        'openai-version': '2020-10-01',
        'openai-processing-ms': '1',
        'x-ratelimit-limit-requests': String(REQUEST_LIMIT),
        'x-ratelimit-remaining-requests': String(REQUEST_LIMIT - (served % REQUEST_LIMIT)),
        'x-ratelimit-reset-requests': '1s',
        'x-ratelimit-limit-tokens': String(TOKEN_LIMIT),
        'x-ratelimit-remaining-tokens': String(TOKEN_LIMIT - 1000),
        'x-ratelimit-reset-tokens': '1s',
      };
    },
  };
}
