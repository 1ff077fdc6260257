import type { Attributes } from "@opentelemetry/api";
import { ATTR } from "../telemetry/semconv.js";
import { num, put, str, strList, sum } from "./read.js";
import { requestedOutputTokens, requestInput } from "./request-size.js";
import type { Operation, ProviderAdapter, ResponseInfo, StreamAccumulator, Usage } from "./types.js";
import { checkRequest } from "./validate-request.js";

const MESSAGES: Operation = { name: "chat", kind: "messages" };
const COUNT_TOKENS: Operation = { name: "count_tokens", kind: "count_tokens" };
const BATCHES: Operation = { name: "create_batch", kind: "batches" };

/** The convention's rule: input_tokens counts cached input too. */
function usage(u: any, prev: Usage = {}): Usage | undefined {
  if (!u || typeof u !== "object") return undefined;
  const cacheRead = num(u.cache_read_input_tokens) ?? prev.cacheRead;
  const cacheCreation = num(u.cache_creation_input_tokens) ?? prev.cacheCreation;
  const rawInput = num(u.input_tokens);
  return {
    input: rawInput !== undefined ? sum(rawInput, cacheRead, cacheCreation) : prev.input,
    output: num(u.output_tokens) ?? prev.output,
    cacheRead,
    cacheCreation,
    reasoning: num(u.output_tokens_details?.thinking_tokens) ?? prev.reasoning,
  };
}

class MessageStreamAccumulator implements StreamAccumulator {
  readonly info: ResponseInfo = {};
  add(event: any): boolean {
    switch (event?.type) {
      case "message_start": {
        const m = event.message;
        this.info.id = str(m?.id);
        this.info.model = str(m?.model);
        this.info.usage = usage(m?.usage);
        break;
      }
      case "message_delta": {
        const reason = str(event.delta?.stop_reason);
        if (reason) this.info.finishReasons = [reason];
        this.info.usage = usage(event.usage, this.info.usage) ?? this.info.usage;
        break;
      }
    }
    return true;
  }
}

export const anthropicAdapter: ProviderAdapter = {
  sdk: "anthropic",
  requestIdHeader: "request-id",
  rateLimitHeaders: [
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-output-tokens-remaining",
  ],

  provider(client) {
    // AnthropicBedrock and AnthropicVertex extend the Anthropic base client and name their platform.
    const c = client as { _genAIProviderName?: unknown; constructor?: { name?: string } };
    if (c._genAIProviderName === "aws.bedrock" || c._genAIProviderName === "gcp.vertex_ai") return c._genAIProviderName;
    if (c.constructor?.name === "AnthropicBedrock") return "aws.bedrock";
    if (c.constructor?.name === "AnthropicVertex") return "gcp.vertex_ai";
    return "anthropic";
  },

  operationForPath(path) {
    const p = path.split("?")[0]!;
    if (p.endsWith("/v1/messages")) return MESSAGES;
    if (p.endsWith("/v1/messages/count_tokens")) return COUNT_TOKENS;
    if (p.endsWith("/v1/messages/batches")) return BATCHES;
    return undefined;
  },

  requestModel(op, body) {
    if (op.kind === "batches") return str(body?.requests?.[0]?.params?.model);
    return str(body?.model);
  },

  withModel(op, body, model) {
    return op.kind === "batches" ? body : { ...body, model };
  },

  requestAttributes(op, b) {
    const a: Attributes = {};
    if (op.kind !== "messages" || !b || typeof b !== "object") return a;
    put(a, ATTR.REQUEST_MAX_TOKENS, num(b.max_tokens));
    put(a, ATTR.REQUEST_TEMPERATURE, num(b.temperature));
    put(a, ATTR.REQUEST_TOP_P, num(b.top_p));
    put(a, ATTR.REQUEST_TOP_K, num(b.top_k));
    put(a, ATTR.REQUEST_STOP, strList(b.stop_sequences));
    a[ATTR.REQUEST_STREAM] = b.stream === true;
    return a;
  },

  requestContent(_op, b) {
    return b?.system !== undefined ? { system: b.system, messages: b.messages } : b?.messages;
  },

  responseInfo(op, d) {
    if (!d || typeof d !== "object") return {};
    if (op.kind === "batches") return { id: str(d.id) };
    if (op.kind === "count_tokens") return {};
    const reason = str(d.stop_reason);
    return {
      id: str(d.id),
      model: str(d.model),
      finishReasons: reason ? [reason] : undefined,
      usage: usage(d.usage),
      output: d.content,
    };
  },

  streamAccumulator() {
    return new MessageStreamAccumulator();
  },

  requestInput,
  requestedOutputTokens,
  checkRequest: (op, b) => checkRequest("anthropic", op, b),

  providerErrorType(err) {
    const type = err?.type ?? err?.error?.error?.type;
    if (typeof type !== "string") return undefined;
    if (type === "invalid_request_error") {
      const message = String(err?.error?.error?.message ?? err?.message ?? "");
      if (/prompt is too long|context window|context length|too many tokens/i.test(message)) return "context_length_exceeded";
    }
    return type;
  },
};
