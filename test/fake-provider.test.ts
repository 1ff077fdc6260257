import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import {
  DEFAULT_RESPONSE_DEFAULTS,
  STRUCTURED_ANSWER,
  expectedText,
  startFakeProvider,
  type FakeProvider,
} from './fake-provider/index';

const USER = [{ role: 'user' as const, content: 'hi' }];
const ANSWER = expectedText(3); // "tok0 tok1 tok2 "
const JSON_SCHEMA = {
  type: 'object',
  properties: { answer: { type: 'number' } },
  required: ['answer'],
  additionalProperties: false,
};

let fp: FakeProvider;
let openai: OpenAI;
let anthropic: Anthropic;

function openaiClient(opts: Partial<ConstructorParameters<typeof OpenAI>[0]> = {}): OpenAI {
  return new OpenAI({ apiKey: 'sk-test', baseURL: fp.openaiBaseURL, maxRetries: 0, logLevel: 'off', ...opts });
}

function anthropicClient(opts: Partial<ConstructorParameters<typeof Anthropic>[0]> = {}): Anthropic {
  return new Anthropic({ apiKey: 'sk-ant-test', baseURL: fp.anthropicBaseURL, maxRetries: 0, logLevel: 'off', ...opts });
}

const chat = (client = openai, extra: Record<string, unknown> = {}) =>
  client.chat.completions.create({ model: 'gpt-test', messages: USER, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming);

const message = (client = anthropic, extra: Record<string, unknown> = {}) =>
  client.messages.create({ model: 'claude-test', max_tokens: 64, messages: USER, ...extra } as Anthropic.MessageCreateParamsNonStreaming);

async function collectChat(stream: AsyncIterable<OpenAI.ChatCompletionChunk>, into: string[] = []): Promise<string[]> {
  for await (const chunk of stream) {
    const piece = chunk.choices[0]?.delta?.content;
    if (piece) into.push(piece);
  }
  return into;
}

async function rejectsWith(p: Promise<unknown>, cls: abstract new (...args: any[]) => Error): Promise<any> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    return err;
  }
  assert.fail(`expected ${cls.name}, but the call resolved`);
}

before(async () => {
  fp = await startFakeProvider();
  openai = openaiClient();
  anthropic = anthropicClient();
});

after(() => fp.close());

beforeEach(() => {
  fp.reset();
  fp.setDefaults(DEFAULT_RESPONSE_DEFAULTS);
});

describe('openai', () => {
  test('chat completion JSON carries text, usage, request id and rate-limit headers', async () => {
    fp.script({ action: { success: { cacheReadTokens: 4, reasoningTokens: 2 } } });
    const { data, response } = await chat().withResponse();
    assert.equal(data.model, 'gpt-test');
    assert.equal(data.choices[0]!.message.content, ANSWER);
    assert.equal(data.choices[0]!.finish_reason, 'stop');
    assert.equal(data.usage?.prompt_tokens, 11);
    assert.equal(data.usage?.completion_tokens, 7);
    assert.equal(data.usage?.prompt_tokens_details?.cached_tokens, 4);
    assert.equal(data.usage?.completion_tokens_details?.reasoning_tokens, 2);
    assert.match(response.headers.get('x-request-id') ?? '', /^req_/);
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '10000');
    assert.ok(response.headers.get('x-ratelimit-remaining-requests'));
    assert.equal(response.headers.get('x-ratelimit-reset-requests'), '1s');
    assert.ok(response.headers.get('x-ratelimit-remaining-tokens'));
    assert.equal(response.headers.get('x-ratelimit-reset-tokens'), '1s');
  });

  test('ids are unique per response and n choices are honoured', async () => {
    const a = await chat(openai, { n: 2 });
    const b = await chat();
    assert.notEqual(a.id, b.id);
    assert.deepEqual(
      a.choices.map((c) => [c.index, c.message.content]),
      [
        [0, ANSWER],
        [1, ANSWER],
      ],
    );
  });

  test('chat stream with include_usage ends with a usage chunk and matches the JSON text', async () => {
    fp.setDefaults({ cacheReadTokens: 5, reasoningTokens: 3 });
    const stream = await openai.chat.completions.create({
      model: 'gpt-test',
      messages: USER,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, ANSWER);
    assert.equal(chunks.filter((c) => c.choices[0]?.delta?.content).length, 3);
    assert.equal(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0]?.finish_reason, 'stop');
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage?.total_tokens, 18);
    assert.equal(last.usage?.prompt_tokens_details?.cached_tokens, 5);
    assert.equal(last.usage?.completion_tokens_details?.reasoning_tokens, 3);
    assert.equal((await chat()).choices[0]!.message.content, text);
  });

  test('chat.completions.stream helper assembles the final completion', async () => {
    const final = await openai.chat.completions.stream({ model: 'gpt-test', messages: USER }).finalChatCompletion();
    assert.equal(final.choices[0]!.message.content, ANSWER);
  });

  for (const stream of [false, true]) {
    test(`runTools (${stream ? 'streaming' : 'JSON'}) calls the first function then answers`, async () => {
      const calls: unknown[] = [];
      const runner = openai.chat.completions.runTools({
        model: 'gpt-test',
        messages: USER,
        stream,
        tools: [
          {
            type: 'function',
            function: {
              name: 'get_weather',
              description: 'weather',
              parameters: { type: 'object', properties: {} },
              parse: JSON.parse,
              function: (args: object) => {
                calls.push(args);
                return 'sunny';
              },
            },
          },
        ],
      } as any);
      assert.equal(await runner.finalContent(), ANSWER);
      assert.deepEqual(calls, [{}]);
      assert.equal(fp.requests.length, 2);
      assert.ok(fp.requests[1]!.body.messages.some((m: any) => m.role === 'tool'));
    });
  }

  test('chat tool call JSON shape', async () => {
    const res = await chat(openai, {
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }],
    });
    assert.equal(res.choices[0]!.finish_reason, 'tool_calls');
    const call = res.choices[0]!.message.tool_calls![0]!;
    assert.equal(call.type, 'function');
    assert.equal(call.type === 'function' && call.function.name, 'lookup');
    assert.equal(call.type === 'function' && call.function.arguments, '{}');
    assert.match(call.id, /^call_/);
  });

  test('chat.completions.parse with a json_schema response_format (JSON and stream)', async () => {
    const response_format = { type: 'json_schema' as const, json_schema: { name: 'math', schema: JSON_SCHEMA, strict: true } };
    const parsed = await openai.chat.completions.parse({ model: 'gpt-test', messages: USER, response_format });
    assert.deepEqual(parsed.choices[0]!.message.parsed, { answer: 4 });
    const streamed = await openai.chat.completions.stream({ model: 'gpt-test', messages: USER, response_format }).finalChatCompletion();
    assert.equal(streamed.choices[0]!.message.content, STRUCTURED_ANSWER);
    assert.deepEqual(streamed.choices[0]!.message.parsed, { answer: 4 });
  });

  test('responses.create JSON', async () => {
    const res = await openai.responses.create({ model: 'gpt-test', input: 'hi' });
    assert.equal(res.output_text, ANSWER);
    assert.equal(res.status, 'completed');
    assert.equal(res.usage?.input_tokens, 11);
    assert.equal(res.usage?.output_tokens_details.reasoning_tokens, 0);
  });

  test('responses.create stream emits the full event sequence', async () => {
    const stream = await openai.responses.create({ model: 'gpt-test', input: 'hi', stream: true });
    const types: string[] = [];
    let text = '';
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
    }
    assert.deepEqual(types, [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    assert.equal(text, ANSWER);
  });

  test('responses.stream().finalResponse() and responses.parse', async () => {
    fp.setDefaults({ cacheReadTokens: 6, reasoningTokens: 1 });
    const final = await openai.responses.stream({ model: 'gpt-test', input: 'hi' }).finalResponse();
    assert.equal(final.output_text, ANSWER);
    assert.deepEqual(final.usage, {
      input_tokens: 11,
      input_tokens_details: { cached_tokens: 6 },
      output_tokens: 7,
      output_tokens_details: { reasoning_tokens: 1 },
      total_tokens: 18,
    });
    const parsed = await openai.responses.parse({
      model: 'gpt-test',
      input: 'hi',
      text: { format: { type: 'json_schema', name: 'math', schema: JSON_SCHEMA, strict: true } },
    });
    assert.deepEqual(parsed.output_parsed, { answer: 4 });
  });

  test('embeddings: 8 floats per input, same values via base64 (SDK default) and float', async () => {
    const viaBase64 = await openai.embeddings.create({ model: 'emb-test', input: ['a', 'b'] });
    const viaFloat = await openai.embeddings.create({ model: 'emb-test', input: ['a', 'b'], encoding_format: 'float' });
    assert.equal(fp.requests[0]!.body.encoding_format, 'base64');
    assert.equal(viaBase64.data.length, 2);
    for (const [i, d] of viaFloat.data.entries()) {
      assert.equal(d.embedding.length, 8);
      assert.deepEqual(Array.from(viaBase64.data[i]!.embedding), d.embedding);
    }
    assert.notDeepEqual(viaFloat.data[0]!.embedding, viaFloat.data[1]!.embedding);
    assert.deepEqual(viaFloat.usage, { prompt_tokens: 11, total_tokens: 11 });
  });

  test('legacy completions JSON and stream', async () => {
    const res = await openai.completions.create({ model: 'gpt-test', prompt: 'hi' });
    assert.equal(res.choices[0]!.text, ANSWER);
    const stream = await openai.completions.create({
      model: 'gpt-test',
      prompt: 'hi',
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? '';
      usage = c.usage ?? usage;
    }
    assert.equal(text, ANSWER);
    assert.equal(usage?.total_tokens, 18);
  });
});

describe('anthropic', () => {
  test('messages JSON carries text, usage, request id and rate-limit headers', async () => {
    fp.setDefaults({ cacheReadTokens: 3, cacheCreationTokens: 2 });
    const { data, response } = await message().withResponse();
    assert.equal(data.model, 'claude-test');
    assert.deepEqual(data.content.map((b) => b.type === 'text' && b.text), [ANSWER]);
    assert.equal(data.stop_reason, 'end_turn');
    assert.equal(data.usage.input_tokens, 11);
    assert.equal(data.usage.output_tokens, 7);
    assert.equal(data.usage.cache_read_input_tokens, 3);
    assert.equal(data.usage.cache_creation_input_tokens, 2);
    assert.match(response.headers.get('request-id') ?? '', /^req_/);
    assert.equal(response.headers.get('anthropic-ratelimit-requests-limit'), '4000');
    assert.ok(response.headers.get('anthropic-ratelimit-requests-remaining'));
    assert.match(response.headers.get('anthropic-ratelimit-tokens-reset') ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  test('messages.stream().finalMessage() returns text and usage; raw events are in order', async () => {
    fp.setDefaults({ cacheReadTokens: 9 });
    const final = await anthropic.messages.stream({ model: 'claude-test', max_tokens: 64, messages: USER }).finalMessage();
    assert.deepEqual(final.content.map((b) => b.type === 'text' && b.text), [ANSWER]);
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.input_tokens, 11);
    assert.equal(final.usage.output_tokens, 7);
    assert.equal(final.usage.cache_read_input_tokens, 9);

    const raw = await anthropic.messages.create({ model: 'claude-test', max_tokens: 64, messages: USER, stream: true });
    const types: string[] = [];
    for await (const ev of raw) types.push(ev.type);
    assert.deepEqual(types, [
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
  });

  test('tools: tool_use until a tool_result is sent (JSON and stream)', async () => {
    const tools = [{ name: 'lookup', input_schema: { type: 'object' as const, properties: {} } }];
    const first = await message(anthropic, { tools });
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content[0]!;
    assert.ok(use.type === 'tool_use');
    assert.equal(use.name, 'lookup');
    assert.deepEqual(use.input, {});

    const streamed = await anthropic.messages.stream({ model: 'claude-test', max_tokens: 64, messages: USER, tools }).finalMessage();
    assert.equal(streamed.stop_reason, 'tool_use');
    assert.deepEqual(streamed.content[0]!.type === 'tool_use' && streamed.content[0]!.input, {});

    const second = await message(anthropic, {
      tools,
      messages: [
        ...USER,
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'ok' }] },
      ],
    });
    assert.equal(second.stop_reason, 'end_turn');
  });

  test('structured output via output_config.format', async () => {
    const parsed = await anthropic.messages.parse({
      model: 'claude-test',
      max_tokens: 64,
      messages: USER,
      output_config: { format: { type: 'json_schema', schema: JSON_SCHEMA } },
    });
    assert.deepEqual(parsed.parsed_output, { answer: 4 });
  });

  test('countTokens, batches.create and beta.messages.create', async () => {
    fp.setDefaults({ inputTokens: 42 });
    assert.deepEqual(await anthropic.messages.countTokens({ model: 'claude-test', messages: USER }), { input_tokens: 42 });

    const batch = await anthropic.messages.batches.create({
      requests: [{ custom_id: 'one', params: { model: 'claude-test', max_tokens: 8, messages: USER } }],
    });
    assert.match(batch.id, /^msgbatch_/);
    assert.equal(batch.type, 'message_batch');
    assert.equal(batch.processing_status, 'in_progress');
    assert.equal(batch.request_counts.processing, 1);

    const beta = await anthropic.beta.messages.create({ model: 'claude-test', max_tokens: 64, messages: USER });
    assert.deepEqual(beta.content.map((b) => b.type === 'text' && b.text), [ANSWER]);
    assert.deepEqual(
      fp.requests.map((r) => [r.provider, r.path]),
      [
        ['anthropic', '/v1/messages/count_tokens'],
        ['anthropic', '/v1/messages/batches'],
        ['anthropic', '/v1/messages'],
      ],
    );
  });

  test('/v1/messages?beta=true is routed like /v1/messages', async () => {
    const res = await fetch(`${fp.url}/v1/messages?beta=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-test', max_tokens: 8, messages: USER }),
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as Anthropic.Message).content.length, 1);
    assert.equal(fp.requests[0]!.path, '/v1/messages');
    assert.equal(fp.requests[0]!.url, '/v1/messages?beta=true');
  });
});

describe('faults surface as SDK errors', () => {
  test('429 → RateLimitError with retry-after readable from err.headers', async () => {
    fp.script({ times: 2, action: { status: 429, headers: { 'retry-after': '7' } } });
    const oErr = await rejectsWith(chat(), OpenAI.RateLimitError);
    assert.equal(oErr.headers.get('retry-after'), '7');
    assert.equal(oErr.code, 'rate_limit_exceeded');
    assert.match(oErr.requestID, /^req_/);
    const aErr = await rejectsWith(message(), Anthropic.RateLimitError);
    assert.equal(aErr.headers.get('retry-after'), '7');
    assert.equal(aErr.type, 'rate_limit_error');
    assert.match(aErr.requestID, /^req_/);
  });

  test('529 → OverloadedError (anthropic), InternalServerError (openai)', async () => {
    fp.script({ times: 2, action: { status: 529 } });
    const aErr = await rejectsWith(message(), Anthropic.OverloadedError);
    assert.equal(aErr.type, 'overloaded_error');
    await rejectsWith(chat(), OpenAI.InternalServerError);
  });

  test('401 → AuthenticationError; 500 → InternalServerError', async () => {
    fp.script({ times: 2, action: { status: 401 } }, { times: 2, action: { status: 500 } });
    assert.equal((await rejectsWith(chat(), OpenAI.AuthenticationError)).code, 'invalid_api_key');
    assert.equal((await rejectsWith(message(), Anthropic.AuthenticationError)).type, 'authentication_error');
    assert.equal((await rejectsWith(chat(), OpenAI.InternalServerError)).type, 'server_error');
    assert.equal((await rejectsWith(message(), Anthropic.InternalServerError)).type, 'api_error');
  });

  test('context overflow → BadRequestError (openai code, anthropic message)', async () => {
    fp.script({ times: 2, action: { status: 400, errorCode: 'context_length_exceeded' } });
    const oErr = await rejectsWith(chat(), OpenAI.BadRequestError);
    assert.equal(oErr.code, 'context_length_exceeded');
    assert.equal(oErr.type, 'invalid_request_error');
    const aErr = await rejectsWith(message(), Anthropic.BadRequestError);
    assert.equal(aErr.type, 'invalid_request_error');
    assert.match(aErr.apiMessage, /^prompt is too long/);
  });

  test('custom errorType / message / raw body override', async () => {
    fp.script(
      { action: { status: 400, errorType: 'custom_type', errorCode: 'custom_code', message: 'boom' } },
      { action: { status: 418, body: { anything: true } } },
    );
    const err = await rejectsWith(chat(), OpenAI.BadRequestError);
    assert.deepEqual([err.type, err.code, err.message], ['custom_type', 'custom_code', '400 boom']);
    const teapot = await rejectsWith(message(), Anthropic.APIError);
    assert.equal(teapot.status, 418);
    assert.deepEqual(teapot.error, { anything: true });
  });

  test('hang → APIConnectionTimeoutError with a small timeout', async () => {
    fp.script({ times: 2, action: { hang: true } });
    await rejectsWith(chat(openaiClient({ timeout: 150 })), OpenAI.APIConnectionTimeoutError);
    await rejectsWith(message(anthropicClient({ timeout: 150 })), Anthropic.APIConnectionTimeoutError);
  });

  test('reset → APIConnectionError (not a timeout)', async () => {
    fp.script({ times: 2, action: { reset: true } });
    const oErr = await rejectsWith(chat(), OpenAI.APIConnectionError);
    assert.ok(!(oErr instanceof OpenAI.APIConnectionTimeoutError));
    const aErr = await rejectsWith(message(), Anthropic.APIConnectionError);
    assert.ok(!(aErr instanceof Anthropic.APIConnectionTimeoutError));
  });

  test('streamCutAfter → error raised during iteration after N chunks', async () => {
    fp.script({ match: { stream: true }, times: 3, action: { streamCutAfter: 2 } });
    const got: string[] = [];
    const stream = await openai.chat.completions.create({ model: 'gpt-test', messages: USER, stream: true });
    await assert.rejects(collectChat(stream, got), /terminated/);
    assert.deepEqual(got, ['tok0 ', 'tok1 ']);

    const texts: string[] = [];
    const ms = anthropic.messages.stream({ model: 'claude-test', max_tokens: 64, messages: USER }).on('text', (t) => texts.push(t));
    await assert.rejects(ms.finalMessage(), Anthropic.AnthropicError);
    assert.deepEqual(texts, ['tok0 ', 'tok1 ']);

    await assert.rejects(openai.responses.stream({ model: 'gpt-test', input: 'hi' }).finalResponse());

    // 0 chunks: headers and preamble arrive, then the body breaks (not a connection error).
    fp.script({ action: { streamCutAfter: 0 } });
    const raw = await anthropic.messages.create({ model: 'claude-test', max_tokens: 64, messages: USER, stream: true });
    const types: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const ev of raw) types.push(ev.type);
      })(),
      // undici's "terminated"; @anthropic-ai/sdk >= 1.17 wraps it in an APIConnectionError.
      (e: any) => /terminated/.test(String(e?.message)) || /terminated/.test(String(e?.cause?.message)),
    );
    assert.deepEqual(types, ['message_start', 'content_block_start']);
  });

  test('streamCutAfter on a non-streaming request drops the connection mid-body', async () => {
    fp.script({ action: { streamCutAfter: 1 } });
    await assert.rejects(chat());
  });

  test('streamErrorAfter → provider-shaped SSE error raised during iteration', async () => {
    fp.script({ match: { stream: true }, times: 3, action: { streamErrorAfter: 2, message: 'mid-stream failure' } });
    const got: string[] = [];
    const stream = await openai.chat.completions.create({ model: 'gpt-test', messages: USER, stream: true });
    const oErr = await rejectsWith(collectChat(stream, got), OpenAI.APIError);
    assert.equal(oErr.message, 'mid-stream failure');
    assert.equal(oErr.type, 'server_error');
    assert.deepEqual(got, ['tok0 ', 'tok1 ']);

    const texts: string[] = [];
    const ms = anthropic.messages.stream({ model: 'claude-test', max_tokens: 64, messages: USER }).on('text', (t) => texts.push(t));
    const aErr = await rejectsWith(ms.finalMessage(), Anthropic.APIError);
    assert.equal(aErr.type, 'overloaded_error');
    assert.equal(aErr.apiMessage, 'mid-stream failure');
    assert.deepEqual(texts, ['tok0 ', 'tok1 ']);

    await rejectsWith(openai.responses.stream({ model: 'gpt-test', input: 'hi' }).finalResponse(), OpenAI.APIError);
  });

  test('malformedJson → the SDK call rejects', async () => {
    fp.script({ times: 2, action: { malformedJson: true } });
    await assert.rejects(chat(), SyntaxError);
    await assert.rejects(message(), SyntaxError);
  });

  test('rawBody sends anything: malformed SSE, custom status', async () => {
    fp.script(
      { action: { rawBody: 'data: {not json\n\n' } },
      { action: { rawBody: 'upstream exploded', contentType: 'text/plain', status: 502, headers: { 'x-custom': 'yes' } } },
    );
    const stream = await openai.chat.completions.create({ model: 'gpt-test', messages: USER, stream: true });
    await assert.rejects(collectChat(stream), SyntaxError);
    const err = await rejectsWith(message(), Anthropic.InternalServerError);
    assert.equal(err.status, 502);
    assert.equal(err.headers.get('x-custom'), 'yes');
    assert.match(err.message, /upstream exploded/);
  });

  test('delayMs answers normally after the delay', async () => {
    fp.script({ action: { delayMs: 120 } });
    const t0 = performance.now();
    assert.equal((await chat()).choices[0]!.message.content, ANSWER);
    assert.ok(performance.now() - t0 >= 110);
  });

  test('success overrides tokens/chunks and passes headers through verbatim', async () => {
    fp.script({ action: { success: { chunks: 2, outputTokens: 99, headers: { 'x-should-retry': 'false', 'x-extra': 'v' } } } });
    const { data, response } = await message().withResponse();
    assert.deepEqual(data.content.map((b) => b.type === 'text' && b.text), [expectedText(2)]);
    assert.equal(data.usage.output_tokens, 99);
    assert.equal(response.headers.get('x-should-retry'), 'false');
    assert.equal(response.headers.get('x-extra'), 'v');
    assert.match(response.headers.get('request-id') ?? '', /^req_/);
  });

  test('x-should-retry: false stops SDK retries', async () => {
    fp.script({ times: Infinity, action: { status: 500, headers: { 'x-should-retry': 'false' } } });
    await rejectsWith(chat(openaiClient({ maxRetries: 3 })), OpenAI.InternalServerError);
    assert.equal(fp.requests.length, 1);
  });
});

describe('rules and recording', () => {
  test('times: a rule answers N matching requests, then normal success', async () => {
    fp.script({ times: 2, action: { status: 503 } });
    await rejectsWith(chat(), OpenAI.InternalServerError);
    await rejectsWith(chat(), OpenAI.InternalServerError);
    assert.equal((await chat()).choices[0]!.message.content, ANSWER);
  });

  test('times: Infinity keeps answering; times: 0 never does', async () => {
    fp.script({ times: 0, action: { status: 400 } }, { times: Infinity, action: { status: 503 } });
    for (let i = 0; i < 4; i++) await rejectsWith(chat(), OpenAI.InternalServerError);
    fp.clearRules();
    await chat();
  });

  test('match: path (suffix string, RegExp), model, provider, stream; first match wins', async () => {
    fp.script(
      { match: { provider: 'anthropic' }, action: { status: 529 } },
      { match: { path: '/embeddings' }, action: { status: 404 } },
      { match: { path: /\/responses$/ }, action: { status: 409 } },
      { match: { model: 'special' }, action: { status: 401 } },
      { match: { stream: true }, action: { status: 500 } },
      { match: { model: 'special' }, action: { status: 403 } },
    );
    assert.equal((await chat()).choices[0]!.message.content, ANSWER); // nothing matches
    await rejectsWith(openai.embeddings.create({ model: 'e', input: 'x' }), OpenAI.NotFoundError);
    await rejectsWith(openai.responses.create({ model: 'r', input: 'x' }), OpenAI.ConflictError);
    await rejectsWith(chat(openai, { model: 'special' }), OpenAI.AuthenticationError);
    await rejectsWith(chat(openai, { model: 'special' }), OpenAI.PermissionDeniedError);
    await rejectsWith(openai.chat.completions.create({ model: 'm', messages: USER, stream: true }), OpenAI.InternalServerError);
    await rejectsWith(message(), Anthropic.OverloadedError);
    await chat(openai, { model: 'special' });
  });

  test('SDK retries are recorded with x-stainless-retry-count', async () => {
    fp.script({ match: { provider: 'openai' }, times: 2, action: { status: 503, headers: { 'retry-after-ms': '1' } } });
    fp.script({ match: { provider: 'anthropic' }, times: 2, action: { status: 529, headers: { 'retry-after-ms': '1' } } });
    await chat(openaiClient({ maxRetries: 2 }));
    await message(anthropicClient({ maxRetries: 2 }));
    assert.deepEqual(
      fp.requests.map((r) => [r.provider, r.retryCount]),
      [
        ['openai', 0],
        ['openai', 1],
        ['openai', 2],
        ['anthropic', 0],
        ['anthropic', 1],
        ['anthropic', 2],
      ],
    );
  });

  test('requests are recorded with lower-cased headers, body, model and stream flag', async () => {
    const before = Date.now();
    await chat(openai, { metadata: { k: 'v' } });
    await anthropic.messages.create({ model: 'claude-test', max_tokens: 8, messages: USER, stream: true }).then(async (s) => {
      for await (const _ of s);
    });
    const [o, a] = fp.requests;
    assert.equal(fp.requests.length, 2);
    assert.deepEqual([o!.method, o!.path, o!.provider, o!.model, o!.stream], ['POST', '/v1/chat/completions', 'openai', 'gpt-test', false]);
    assert.deepEqual(o!.body.metadata, { k: 'v' });
    assert.equal(o!.headers['authorization'], 'Bearer sk-test');
    assert.ok(Object.keys(o!.headers).every((k) => k === k.toLowerCase()));
    assert.ok(o!.at >= before && o!.at <= Date.now());
    assert.deepEqual([a!.provider, a!.model, a!.stream], ['anthropic', 'claude-test', true]);
    // @anthropic-ai/sdk 1.x sends the key as a bearer token; older versions used x-api-key.
    assert.ok(a!.headers['authorization'] === 'Bearer sk-ant-test' || a!.headers['x-api-key'] === 'sk-ant-test');
    assert.ok(a!.headers['anthropic-version']);
    fp.reset();
    assert.equal(fp.requests.length, 0);
  });

  test('unknown routes answer a provider-shaped 404', async () => {
    const res = await fetch(`${fp.openaiBaseURL}/nope`, { method: 'POST', body: '{}' });
    assert.equal(res.status, 404);
    assert.match(((await res.json()) as any).error.message, /Invalid URL/);
    assert.match(res.headers.get('x-request-id') ?? '', /^req_/);
  });
});

describe('streaming scale and lifecycle', () => {
  test('chunkDelayMs paces the stream', async () => {
    fp.setDefaults({ chunks: 5, chunkDelayMs: 20 });
    const t0 = performance.now();
    const stream = await openai.chat.completions.create({ model: 'gpt-test', messages: USER, stream: true });
    assert.equal((await collectChat(stream)).length, 5);
    assert.ok(performance.now() - t0 >= 90);
  });

  // Through the Anthropic SDK: the OpenAI SDK's per-chunk promise work makes the same stream
  // ~3x slower under node:test's async-context tracking (the server itself sends it in ~0.5 s).
  test('a 100,000-chunk stream completes through the SDK', async () => {
    fp.setDefaults({ chunks: 100_000 });
    let deltas = 0;
    const final = await anthropic.messages
      .stream({ model: 'claude-test', max_tokens: 64, messages: USER })
      .on('text', () => deltas++)
      .finalMessage();
    assert.equal(deltas, 100_000);
    const text = final.content[0]!.type === 'text' ? final.content[0]!.text : '';
    assert.equal(text, expectedText(100_000));
    assert.equal(final.usage.output_tokens, 7);
  });

  test('backpressure: a paused reader does not make the server buffer the stream', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    fp.setDefaults({ chunks: 100_000 }); // ~26 MB of SSE if buffered
    gc();
    const baseline = process.memoryUsage().heapUsed;
    const req = http.request(`${fp.openaiBaseURL}/chat/completions`, { method: 'POST', agent: false });
    req.end(JSON.stringify({ model: 'gpt-test', messages: USER, stream: true }));
    const res = await new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
    res.pause();
    await new Promise((r) => setTimeout(r, 250));
    gc();
    const growthMB = (process.memoryUsage().heapUsed - baseline) / 1e6;
    assert.ok(growthMB < 8, `heap grew ${growthMB.toFixed(1)} MB while the reader was paused`);
    let bytes = 0;
    res.on('data', (c: Buffer) => (bytes += c.length));
    res.resume();
    await new Promise((r) => res.once('end', r));
    assert.ok(bytes > 20e6);
  });

  test('close() ends hanging requests and slow streams at once, leaving no timers', async () => {
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const local = await startFakeProvider({ defaults: { chunkDelayMs: 60_000 } });
    local.script({ match: { path: '/chat/completions' }, action: { hang: true } });
    const client = new OpenAI({ apiKey: 'k', baseURL: local.openaiBaseURL, maxRetries: 0, logLevel: 'off' });
    const hanging = client.chat.completions.create({ model: 'm', messages: USER }).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    const slow = await fetch(`${local.url}/v1/messages`, {
      method: 'POST',
      body: JSON.stringify({ model: 'c', max_tokens: 8, messages: USER, stream: true }),
    });
    const reading = slow.text().then(
      () => 'resolved',
      (e: unknown) => e,
    );
    while (local.requests.length < 2) await new Promise((r) => setImmediate(r));
    const t0 = performance.now();
    await local.close();
    assert.ok(performance.now() - t0 < 500);
    assert.ok((await hanging) instanceof OpenAI.APIConnectionError);
    assert.ok((await reading) instanceof Error);
    const timersAfter = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    assert.ok(timersAfter <= timersBefore, `timers: ${timersBefore} before, ${timersAfter} after close()`);
    await local.close(); // idempotent
  });
});
