import type { Attributes } from "@opentelemetry/api";
import { ATTR } from "../telemetry/semconv.js";
import { type AiSdkRequest, aiSdkRequestedOutputTokens, aiSdkRequestInput, checkAiSdkRequest } from "./ai-sdk-request.js";
import { anthropicAdapter } from "./anthropic.js";
import { httpFailure, isSocketError, NO_FLAGS, providerTypeFailure } from "./classify.js";
import { openaiAdapter } from "./openai.js";
import { num, put, str, strList } from "./read.js";
import type { Failure, Operation, ProviderAdapter, ProviderName, ResponseInfo, StreamAccumulator, Usage } from "./types.js";

/**
 * The Vercel AI SDK's provider model calls (`doGenerate` / `doStream` / `doEmbed` of the models that
 * @ai-sdk/openai, @ai-sdk/anthropic and @ai-sdk/azure build): what one asks for and what it answered, read
 * from the AI SDK's provider-neutral shapes (language model and embedding model specifications v2–v4).
 */

export type AiSdkMethod = AiSdkRequest["method"];

/** Which wire API a model class speaks: @ai-sdk/openai's and @ai-sdk/azure's models speak OpenAI's. */
export type AiSdkFamily = "openai" | "anthropic";

const CHAT: Operation = { name: "chat", kind: "chat" };
const RESPONSES: Operation = { name: "chat", kind: "responses" };
const MESSAGES: Operation = { name: "chat", kind: "messages" };
const COMPLETIONS: Operation = { name: "text_completion", kind: "completions" };
const EMBEDDINGS: Operation = { name: "embeddings", kind: "embeddings" };

/** The operation of a model's call; `providerId` is the model's `provider` ("openai.chat", "azure.responses", …). */
export function aiSdkOperation(providerId: string, method: AiSdkMethod): Operation {
  if (method === "doEmbed") return EMBEDDINGS;
  const api = providerId.slice(providerId.indexOf(".") + 1);
  if (api === "responses") return RESPONSES;
  if (api === "completion") return COMPLETIONS;
  if (api === "messages") return MESSAGES;
  return CHAT;
}

/** `gen_ai.provider.name`: Azure's models are @ai-sdk/openai's classes under an "azure.*" provider id. */
export function aiSdkProviderName(family: AiSdkFamily, providerId: string): ProviderName {
  if (family === "openai" && providerId.startsWith("azure")) return "azure.ai.openai";
  return family;
}

const APICALL_ERROR = Symbol.for("vercel.ai.error.AI_APICallError");

function isApiCallError(e: any): boolean {
  return e !== null && typeof e === "object" && e[APICALL_ERROR] === true;
}

/** Brand of the error an attempt's own timeout aborts the request with (set by the call engine). */
export const ATTEMPT_TIMEOUT = Symbol.for("llm-resilience.attempt-timeout");

/** A lower-cased header record (the AI SDK's `responseHeaders`) read like `Headers`. */
export function headerRecordReader(h: unknown): { get(name: string): string | null } | undefined {
  if (!h || typeof h !== "object") return undefined;
  if (typeof (h as any).get === "function") return h as { get(name: string): string | null };
  const rec = h as Record<string, unknown>;
  return {
    get(name: string): string | null {
      const v = rec[name.toLowerCase()];
      return v === undefined || v === null ? null : String(v);
    },
  };
}

/** The provider's error type from the body the AI SDK parsed (`APICallError.data`, or a stream's `error` part). */
function providerErrorType(family: AiSdkFamily, data: any, status: number | undefined, message: string | undefined): string | undefined {
  if (family === "anthropic") {
    // The API's body is {type: "error", error: {type, message}}; a stream's error part carries the inner object.
    const inner = data?.type === "error" ? data.error : data;
    return anthropicAdapter.providerErrorType({ error: { error: inner }, message: inner?.message ?? message });
  }
  const inner = data?.error ?? data;
  return openaiAdapter.providerErrorType({ status, code: inner?.code, type: inner?.type });
}

/**
 * How the attempt loop treats an error a provider model call threw (the same rules as for the SDKs:
 * README "Which errors are retried").
 */
function aiSdkFailure(family: AiSdkFamily, err: unknown): Failure {
  const e = err as any;
  if (e?.[ATTEMPT_TIMEOUT] === true) return { ...NO_FLAGS, errorType: "timeout", retryable: true, timeout: true, outage: true };
  const name = typeof e?.name === "string" ? e.name : "";
  if (name === "BreakerOpenError") return { ...NO_FLAGS, errorType: "breaker_open", retryable: false };
  if (name === "DeadlineExceededError") return { ...NO_FLAGS, errorType: "timeout", retryable: false, timeout: true };
  if (name === "AbortError" || name === "TimeoutError" || name === "ResponseAborted") {
    // The caller's signal (its own abort, or the AI SDK's `timeout` option): stop, never retry.
    const timeout = name === "TimeoutError";
    return { ...NO_FLAGS, errorType: timeout ? "timeout" : "aborted", retryable: false, aborted: true, timeout };
  }
  if (isApiCallError(e)) {
    const status = typeof e.statusCode === "number" ? e.statusCode : undefined;
    if (status === undefined) {
      // No answer: "Cannot connect to API", a reset socket, a body cut short.
      return { ...NO_FLAGS, errorType: "connection_error", retryable: e.isRetryable === true, outage: true };
    }
    return httpFailure(status, providerErrorType(family, e.data, status, e.message), headerRecordReader(e.responseHeaders));
  }
  if (isSocketError(e)) return { ...NO_FLAGS, errorType: "connection_error", retryable: true, outage: true };
  // A stream's `error` part: the provider's error object as it was sent.
  return providerTypeFailure(e && typeof e === "object" && !(e instanceof Error) ? providerErrorType(family, e, undefined, undefined) : undefined);
}

/** Usage in the specification v3/v4 shape ({inputTokens: {total, cacheRead, cacheWrite}, …}) or the flat v2 one. */
function aiSdkUsage(u: any): Usage | undefined {
  if (!u || typeof u !== "object") return undefined;
  const input = u.inputTokens;
  if (input !== null && typeof input === "object") {
    return {
      input: num(input.total),
      output: num(u.outputTokens?.total),
      cacheRead: num(input.cacheRead),
      cacheCreation: num(input.cacheWrite),
      reasoning: num(u.outputTokens?.reasoning),
    };
  }
  return {
    input: num(input),
    output: num(u.outputTokens),
    cacheRead: num(u.cachedInputTokens),
    reasoning: num(u.reasoningTokens),
  };
}

/** The provider's own finish reason when the model reports it (`raw`), else the AI SDK's unified one. */
function finishReasons(f: any): string[] | undefined {
  const reason = str(f?.raw) ?? str(f?.unified) ?? str(f);
  return reason ? [reason] : undefined;
}

/** What a `doGenerate` result says. */
function generateInfo(result: any): ResponseInfo {
  return {
    id: str(result?.response?.id),
    model: str(result?.response?.modelId),
    finishReasons: finishReasons(result?.finishReason),
    usage: aiSdkUsage(result?.usage),
    output: result?.content,
  };
}

/** What a `doEmbed` result says (the model name only the raw body carries). */
function embedInfo(result: any): ResponseInfo {
  const tokens = num(result?.usage?.tokens);
  return {
    model: str(result?.response?.body?.model),
    usage: tokens !== undefined ? { input: tokens } : undefined,
  };
}

/** The parts of a `doStream` stream that carry output for the caller (the rest is framing and metadata). */
const OUTPUT = new Set([
  "text-delta",
  "reasoning-delta",
  "tool-input-start",
  "tool-input-delta",
  "tool-call",
  "tool-result",
  "file",
  "reasoning-file",
  "source",
]);

/** Reads a `doStream` stream's parts: id and model from `response-metadata`, usage and finish reason from `finish`. */
export class AiSdkStreamAccumulator implements StreamAccumulator {
  readonly info: ResponseInfo = {};
  /** The first `error` part: the stream failed even if the transport did not. */
  error: unknown;
  hasError = false;

  add(part: any): boolean {
    switch (part?.type) {
      case "response-metadata":
        this.info.id ??= str(part.id);
        this.info.model ??= str(part.modelId);
        break;
      case "finish":
        this.info.usage = aiSdkUsage(part.usage);
        this.info.finishReasons = finishReasons(part.finishReason);
        break;
      case "error":
        if (!this.hasError) {
          this.hasError = true;
          this.error = part.error;
        }
        break;
    }
    return true;
  }
}

/** Whether a stream part is output that reaches the caller (the first one is the call's first chunk). */
export function isOutputPart(part: any): boolean {
  return OUTPUT.has(part?.type);
}

/** The ProviderAdapter the call engine uses for AI SDK model calls; a "body" is an {@link AiSdkRequest}. */
function adapterFor(family: AiSdkFamily): ProviderAdapter {
  const wire = family === "openai" ? openaiAdapter : anthropicAdapter;
  return {
    sdk: family,
    requestIdHeader: wire.requestIdHeader,
    rateLimitHeaders: wire.rateLimitHeaders,
    provider: () => family,
    operationForPath: () => undefined,
    requestModel: (_op, req: AiSdkRequest) => req?.modelId,
    withModel: (_op, req: AiSdkRequest, model) => ({ ...req, modelId: model }),
    requestAttributes(_op, req: AiSdkRequest): Attributes {
      const a: Attributes = {};
      const o = req?.options;
      if (!o || typeof o !== "object" || req.method === "doEmbed") return a;
      put(a, ATTR.REQUEST_MAX_TOKENS, num(o.maxOutputTokens));
      put(a, ATTR.REQUEST_TEMPERATURE, num(o.temperature));
      put(a, ATTR.REQUEST_TOP_P, num(o.topP));
      put(a, ATTR.REQUEST_TOP_K, num(o.topK));
      put(a, ATTR.REQUEST_STOP, strList(o.stopSequences));
      put(a, ATTR.REQUEST_FREQUENCY_PENALTY, num(o.frequencyPenalty));
      put(a, ATTR.REQUEST_PRESENCE_PENALTY, num(o.presencePenalty));
      put(a, ATTR.REQUEST_SEED, num(o.seed));
      a[ATTR.REQUEST_STREAM] = req.method === "doStream";
      return a;
    },
    requestContent: (_op, req: AiSdkRequest) => (req?.method === "doEmbed" ? req.options?.values : req?.options?.prompt),
    requestInput: aiSdkRequestInput,
    requestedOutputTokens: (op, req: AiSdkRequest) => aiSdkRequestedOutputTokens(family, op, req),
    checkRequest: checkAiSdkRequest,
    responseInfo: (op, result) => (op.kind === "embeddings" ? embedInfo(result) : generateInfo(result)),
    streamAccumulator: () => new AiSdkStreamAccumulator(),
    providerErrorType: (err) => providerErrorType(family, isApiCallError(err) ? err.data : err, err?.statusCode, err?.message),
    classify: (err) => aiSdkFailure(family, err),
  };
}

export const aiSdkAdapters: Readonly<Record<AiSdkFamily, ProviderAdapter>> = {
  openai: adapterFor("openai"),
  anthropic: adapterFor("anthropic"),
};
