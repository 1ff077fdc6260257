export type ProviderName = 'openai' | 'anthropic';
/** A cloud platform serving a provider's API under its own URLs (see platforms.ts). */
export type Platform = 'azure' | 'bedrock' | 'vertex';

export interface FakeProvider {
  /** "http://127.0.0.1:PORT" */
  readonly url: string;
  readonly port: number;
  /** url + "/v1" */
  readonly openaiBaseURL: string;
  /** url (the Anthropic SDK appends /v1/...) */
  readonly anthropicBaseURL: string;
  /** url + "/openai": AzureOpenAI's baseURL (requests go to /openai/deployments/<model>/...). */
  readonly azureBaseURL: string;
  /** url: AnthropicBedrock's baseURL (requests go to /model/<id>/invoke[-with-response-stream]). */
  readonly bedrockBaseURL: string;
  /** url + "/v1": AnthropicVertex's baseURL (requests go to /v1/projects/.../models/<model>:rawPredict). */
  readonly vertexBaseURL: string;
  /** Every request received, in arrival order. */
  readonly requests: RecordedRequest[];
  /** Appends rules; they are checked in order after the ones already scripted. */
  script(...rules: FaultRule[]): void;
  clearRules(): void;
  /** Clears rules and recorded requests. */
  reset(): void;
  setDefaults(d: Partial<ResponseDefaults>): void;
  /** Closes the server and destroys every open socket, including hanging ones. */
  close(): Promise<void>;
}

export interface RecordedRequest {
  method: string;
  /** URL path without the query string, e.g. "/v1/messages". */
  path: string;
  /** Raw request URL including the query string, e.g. "/v1/messages?beta=true". */
  url: string;
  /** The API family of the body (Azure: openai; Bedrock, Vertex: anthropic). */
  provider: ProviderName;
  /** Set for a cloud platform's URL. */
  platform?: Platform;
  /** From the body, else from the URL (Bedrock model id, Vertex model, Azure deployment). */
  model?: string;
  stream: boolean;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  /** Parsed JSON body, the raw text when it is not JSON, undefined when empty. */
  body: any;
  /** From x-stainless-retry-count. */
  retryCount?: number;
  /** Date.now() when the request arrived. */
  at: number;
}

export interface ResponseDefaults {
  /** Stream content chunks (default 3). */
  chunks: number;
  /** Delay before each streamed content chunk (default 0). */
  chunkDelayMs: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
  reasoningTokens: number;
  /** Delay before any answer (status line) is sent (default 0). */
  latencyMs: number;
}

export interface RuleMatch {
  /** A string matches the exact path or a path ending with it ("/chat/completions"); a RegExp is tested on the path. */
  path?: string | RegExp;
  model?: string;
  provider?: ProviderName;
  platform?: Platform;
  stream?: boolean;
}

export interface FaultRule {
  match?: RuleMatch;
  /** How many matching requests this rule answers; default 1, Infinity allowed. */
  times?: number;
  action: Fault;
}

export interface StatusFault {
  status: number;
  headers?: Record<string, string>;
  errorType?: string;
  errorCode?: string;
  message?: string;
  /** Raw body override: strings are sent verbatim, anything else as JSON. */
  body?: unknown;
}
export interface HangFault {
  hang: true;
}
export interface ResetFault {
  reset: true;
}
export interface DelayFault {
  delayMs: number;
}
export interface StreamCutFault {
  streamCutAfter: number;
}
export interface StreamErrorFault {
  streamErrorAfter: number;
  errorType?: string;
  message?: string;
}
export interface MalformedJsonFault {
  malformedJson: true;
}
export interface RawBodyFault {
  rawBody: string;
  contentType?: string;
  status?: number;
  headers?: Record<string, string>;
}
export interface SuccessFault {
  success: Partial<ResponseDefaults> & { headers?: Record<string, string> };
}

export type Fault =
  | StatusFault
  | HangFault
  | ResetFault
  | DelayFault
  | StreamCutFault
  | StreamErrorFault
  | MalformedJsonFault
  | RawBodyFault
  | SuccessFault;

export const DEFAULT_RESPONSE_DEFAULTS: Readonly<ResponseDefaults> = Object.freeze({
  chunks: 3,
  chunkDelayMs: 0,
  inputTokens: 11,
  outputTokens: 7,
  cacheReadTokens: 0,
  cacheCreationTokens: 0,
  reasoningTokens: 0,
  latencyMs: 0,
});
