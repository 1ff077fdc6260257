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
  requestAttributes(op: Operation, body: any): Attributes;
  /** Input messages, only read when content capture is on. */
  requestContent(op: Operation, body: any): unknown;
  responseInfo(op: Operation, data: any): ResponseInfo;
  streamAccumulator(op: Operation, injectedUsage: boolean): StreamAccumulator;
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
