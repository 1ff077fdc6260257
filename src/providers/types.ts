import type { Attributes } from "@opentelemetry/api";

export type ProviderName = "openai" | "anthropic" | "azure.ai.openai" | "aws.bedrock" | "gcp.vertex_ai";

export interface Operation {
  /** `gen_ai.operation.name` */
  readonly name: string;
  /** Which reader understands this operation's bodies. */
  readonly kind: "chat" | "responses" | "embeddings" | "completions" | "messages" | "count_tokens" | "batches";
}

export interface Usage {
  input?: number;
  output?: number;
  cacheRead?: number;
  cacheCreation?: number;
  reasoning?: number;
}

/** What a response (or a finished stream) told us. */
export interface ResponseInfo {
  id?: string;
  model?: string;
  finishReasons?: string[];
  usage?: Usage;
  /** Output content, only read when content capture is on. */
  output?: unknown;
  /** Set when the body itself reports a failure (a Responses API `status: "failed"`). */
  errorType?: string;
}

/** Accumulates a stream's chunks into a ResponseInfo without keeping the chunks. */
export interface StreamAccumulator {
  /** Returns false when the chunk must not reach the caller (our injected usage chunk). */
  add(chunk: unknown): boolean;
  readonly info: ResponseInfo;
}

export interface ProviderAdapter {
  readonly sdk: "openai" | "anthropic";
  /** Header names carrying the provider's request id and its rate-limit state. */
  readonly requestIdHeader: string;
  readonly rateLimitHeaders: readonly string[];
  provider(client: { baseURL?: string }): ProviderName;
  operationForPath(path: string): Operation | undefined;
  requestModel(op: Operation, body: any): string | undefined;
  /** The same body asking for another model (fallback). */
  withModel(op: Operation, body: any, model: string): any;
  /** The request's span attributes, in a fresh object the recorder adds the call's own attributes to. */
  requestAttributes(op: Operation, body: any): Attributes;
  /** Input messages, only read when content capture is on. */
  requestContent(op: Operation, body: any): unknown;
  responseInfo(op: Operation, data: any): ResponseInfo;
  streamAccumulator(op: Operation, injectedUsage: boolean): StreamAccumulator;
  /** The parts of a request the provider bills as input tokens (the spend limit's and the rate limiter's estimates read them). */
  requestInput(op: Operation, body: any): unknown;
  /** The output tokens a request asks for at most, when it says. */
  requestedOutputTokens(op: Operation, body: any): number | undefined;
  /** What the provider would refuse in this request (opt-in validation); undefined for a request nothing is checked in. */
  checkRequest(op: Operation, body: any): RequestCheck | undefined;
  /** The provider's error type for an SDK APIError, when it sent one. */
  providerErrorType(err: any): string | undefined;
  /** Errors of a shape `classify` does not know (the AI SDK's): this adapter classifies them itself. */
  classify?(err: unknown): Failure;
}

/** How the loop treats one failed attempt. The table is in the README ("Which errors are retried"). */
export interface Failure {
  /** The contract's `error.type`. */
  errorType: string;
  retryable: boolean;
  status?: number;
  timeout: boolean;
  aborted: boolean;
  /** A server-side failure the breaker counts (429 only when configured). */
  outage: boolean;
  rateLimited: boolean;
  contextOverflow: boolean;
  headers?: { get(name: string): string | null };
}

/** What the context and output checks need to know of a model. */
export interface RequestLimits {
  readonly contextWindow?: number;
  readonly maxOutputTokens?: number;
}

/** A request checked before it is sent: what the provider would refuse with a 400, whatever the model. */
export interface RequestCheck {
  readonly problems: readonly string[];
  /** The fewest input tokens the request can be (see minInputTokens). */
  readonly minInputTokens: number;
  /** A `max_tokens` the provider refuses above the model's output limit (Anthropic). */
  readonly boundedMaxTokens?: number;
}
