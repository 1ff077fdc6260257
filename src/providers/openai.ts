import type { Attributes } from "@opentelemetry/api";
import { ATTR } from "../telemetry/semconv.js";
import { num, put, str, strList } from "./read.js";
import { requestedOutputTokens, requestInput } from "./request-size.js";
import type { Operation, ProviderAdapter, ResponseInfo, StreamAccumulator, Usage } from "./types.js";
import { checkRequest } from "./validate-request.js";

const CHAT: Operation = { name: "chat", kind: "chat" };
const RESPONSES: Operation = { name: "chat", kind: "responses" };
const EMBEDDINGS: Operation = { name: "embeddings", kind: "embeddings" };
const COMPLETIONS: Operation = { name: "text_completion", kind: "completions" };

function chatUsage(u: any): Usage | undefined {
  if (!u || typeof u !== "object") return undefined;
  return {
    input: num(u.prompt_tokens),
    output: num(u.completion_tokens),
    cacheRead: num(u.prompt_tokens_details?.cached_tokens),
    reasoning: num(u.completion_tokens_details?.reasoning_tokens),
  };
}

function responsesUsage(u: any): Usage | undefined {
  if (!u || typeof u !== "object") return undefined;
  return {
    input: num(u.input_tokens),
    output: num(u.output_tokens),
    cacheRead: num(u.input_tokens_details?.cached_tokens),
    reasoning: num(u.output_tokens_details?.reasoning_tokens),
  };
}

function finishReasons(choices: unknown): string[] | undefined {
  if (!Array.isArray(choices)) return undefined;
  const out: string[] = [];
  for (const c of choices) if (typeof c?.finish_reason === "string") out.push(c.finish_reason);
  return out.length ? out : undefined;
}

function responsesInfo(r: any): ResponseInfo {
  const reason = str(r?.incomplete_details?.reason) ?? str(r?.status);
  return {
    id: str(r?.id),
    model: str(r?.model),
    finishReasons: reason ? [reason] : undefined,
    usage: responsesUsage(r?.usage),
    output: r?.output,
    errorType: r?.status === "failed" ? (str(r?.error?.code) ?? "_OTHER") : undefined,
  };
}

/** Chat and legacy completion chunks: id/model from the first, finish reasons per choice, usage from the last. */
class ChoiceStreamAccumulator implements StreamAccumulator {
  readonly info: ResponseInfo = {};
  /** Finish reason by choice index; a Map, not an array: the index comes off the wire (2^32-2 is valid JSON). */
  private readonly reasons = new Map<unknown, string>();
  constructor(private readonly injectedUsage: boolean) {}
  add(chunk: any): boolean {
    if (!chunk || typeof chunk !== "object") return true;
    if (this.info.id === undefined) {
      this.info.id = str(chunk.id);
      this.info.model = str(chunk.model);
    }
    const choices = chunk.choices;
    if (Array.isArray(choices)) {
      for (const c of choices) {
        if (typeof c?.finish_reason === "string") {
          this.reasons.set(typeof c.index === "number" ? c.index : `#${this.reasons.size}`, c.finish_reason);
          this.info.finishReasons = [...this.reasons]
            .sort(([a], [b]) => (typeof a === "number" && typeof b === "number" ? a - b : 0))
            .map(([, r]) => r);
        }
      }
    }
    if (this.injectedUsage) {
      // We asked for usage, the caller did not: their chunks must look as if we had not.
      if (chunk.usage === null) delete chunk.usage;
      else if (chunk.usage && Array.isArray(choices) && choices.length === 0) {
        this.info.usage = chatUsage(chunk.usage);
        return false;
      }
    }
    if (chunk.usage) this.info.usage = chatUsage(chunk.usage);
    return true;
  }
}

class ResponsesStreamAccumulator implements StreamAccumulator {
  info: ResponseInfo = {};
  add(event: any): boolean {
    const r = event?.response;
    if (r && typeof r === "object") {
      if (event.type === "response.completed" || event.type === "response.incomplete" || event.type === "response.failed") {
        this.info = responsesInfo(r);
      } else if (this.info.id === undefined) {
        this.info.id = str(r.id);
        this.info.model = str(r.model);
      }
    }
    return true;
  }
}

export const openaiAdapter: ProviderAdapter = {
  sdk: "openai",
  requestIdHeader: "x-request-id",
  rateLimitHeaders: [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
  ],

  provider(client) {
    const ctor = (client as any)?.constructor?.name;
    if (ctor === "AzureOpenAI" || /\.openai\.azure\.com/i.test(client.baseURL ?? "")) return "azure.ai.openai";
    return "openai";
  },

  operationForPath(path) {
    const p = path.split("?")[0]!;
    if (p.endsWith("/chat/completions")) return CHAT;
    if (p.endsWith("/responses")) return RESPONSES;
    if (p.endsWith("/embeddings")) return EMBEDDINGS;
    if (p.endsWith("/completions")) return COMPLETIONS;
    return undefined;
  },

  requestModel(_op, body) {
    return str(body?.model);
  },

  withModel(_op, body, model) {
    return { ...body, model };
  },

  requestAttributes(op, b) {
    const a: Attributes = {};
    if (!b || typeof b !== "object") return a;
    if (op.kind === "embeddings") {
      put(a, ATTR.REQUEST_ENCODING_FORMATS, strList(b.encoding_format));
      return a;
    }
    const n = num(b.n);
    put(a, ATTR.REQUEST_MAX_TOKENS, num(b.max_completion_tokens) ?? num(b.max_tokens) ?? num(b.max_output_tokens));
    put(a, ATTR.REQUEST_TEMPERATURE, num(b.temperature));
    put(a, ATTR.REQUEST_TOP_P, num(b.top_p));
    put(a, ATTR.REQUEST_STOP, strList(b.stop));
    put(a, ATTR.REQUEST_FREQUENCY_PENALTY, num(b.frequency_penalty));
    put(a, ATTR.REQUEST_PRESENCE_PENALTY, num(b.presence_penalty));
    put(a, ATTR.REQUEST_SEED, num(b.seed));
    put(a, ATTR.REQUEST_CHOICE_COUNT, n !== undefined && n !== 1 ? n : undefined);
    a[ATTR.REQUEST_STREAM] = b.stream === true;
    return a;
  },

  requestContent(op, b) {
    if (op.kind === "responses") return b?.input;
    if (op.kind === "chat") return b?.messages;
    return b?.input ?? b?.prompt;
  },

  responseInfo(op, d) {
    if (!d || typeof d !== "object") return {};
    switch (op.kind) {
      case "responses":
        return responsesInfo(d);
      case "embeddings":
        return { model: str(d.model), usage: { input: num(d.usage?.prompt_tokens) } };
      default:
        return {
          id: str(d.id),
          model: str(d.model),
          finishReasons: finishReasons(d.choices),
          usage: chatUsage(d.usage),
          output: d.choices,
        };
    }
  },

  streamAccumulator(op, injectedUsage) {
    return op.kind === "responses" ? new ResponsesStreamAccumulator() : new ChoiceStreamAccumulator(injectedUsage);
  },

  requestInput,
  requestedOutputTokens,
  checkRequest: (op, b) => checkRequest("openai", op, b),

  providerErrorType(err) {
    const code = err?.code ?? err?.error?.code;
    if (code === "context_length_exceeded") return code;
    const type = err?.type ?? err?.error?.type;
    if (typeof type === "string" && type.endsWith("_error")) return type;
    // OpenAI's 429 body says type "requests"/"tokens"; normalise to the error type dashboards expect.
    if (err?.status === 429 || code === "rate_limit_exceeded") return "rate_limit_error";
    // A Responses stream's `event: error` carries `{type: "error", code, message}`: the code is the type.
    if (err?.status === undefined && typeof code === "string" && code !== "") return code;
    return undefined;
  },
};
