import type { ResilienceOptions } from "../config.js";
import { estimateTokens } from "../policy/rate-limiter.js";
import type { StateStore } from "../policy/store.js";
import type { Operation, ProviderAdapter, Usage } from "../providers/types.js";
import { type Attempt, type CallRecorder, guard } from "../telemetry/call-recorder.js";
import type { AttemptSender, LoopInput, LoopResult, RequestProps } from "./attempt-loop.js";
import type { Endpoint } from "./client-info.js";
import { breakerKey, type KeyPolicies, policiesForCall } from "./key-policies.js";
import type { Preflight } from "./preflight.js";

export interface CallLoopSettings {
  recorder: CallRecorder;
  adapter: ProviderAdapter;
  op: Operation;
  options: ResilienceOptions;
  /** Where the policies keep their state: the runtime's store (in process, or Redis). */
  store: StateStore<any>;
  /** The provider and server of the breaker keys. */
  endpoint: Endpoint;
  /** The request, in the shape the adapter reads (its size reserves rate-limit tokens). */
  body: unknown;
  maxAttempts: number;
  sdkTimeoutMs: number | undefined;
  signal: AbortSignal | undefined;
  /** Validation and the spend limit (absent when both are off). */
  preflight?: Preflight;
  sender: AttemptSender;
}

const FALLBACK_KINDS = new Set<Operation["kind"]>(["chat", "responses", "messages", "completions"]);
const NONE: readonly string[] = [];

/** What the attempt loop needs from one call, SDK or AI SDK: its settings, its policies, and how to send one attempt. */
export class CallLoop implements LoopInput {
  readonly recorder: CallRecorder;
  readonly adapter: ProviderAdapter;
  readonly options: ResilienceOptions;
  readonly maxAttempts: number;
  readonly sdkTimeoutMs: number | undefined;
  readonly signal: AbortSignal | undefined;
  readonly model: string | undefined;
  readonly fallbacks: readonly string[];
  readonly contextFallbacks: readonly string[];
  readonly estimatedTokens: number;
  readonly preflight: Preflight | undefined;
  private readonly endpoint: Endpoint;
  private readonly store: StateStore<any>;
  private readonly sender: AttemptSender;

  constructor(s: CallLoopSettings) {
    this.recorder = s.recorder;
    this.adapter = s.adapter;
    this.options = s.options;
    this.maxAttempts = s.maxAttempts;
    this.sdkTimeoutMs = s.sdkTimeoutMs;
    this.signal = s.signal;
    this.model = s.recorder.requestModel;
    const fallbackable = this.model !== undefined && FALLBACK_KINDS.has(s.op.kind);
    this.fallbacks = (fallbackable && s.options.fallbacks[this.model!]) || NONE;
    this.contextFallbacks = (fallbackable && s.options.contextFallbacks[this.model!]) || NONE;
    this.estimatedTokens =
      s.options.tpm !== undefined ? estimateTokens(s.adapter.requestInput(s.op, s.body), s.adapter.requestedOutputTokens(s.op, s.body)) : 0;
    this.preflight = s.preflight;
    this.endpoint = s.endpoint;
    this.store = s.store;
    this.sender = s.sender;
  }

  policiesFor(model: string | undefined): KeyPolicies {
    const e = this.endpoint;
    return policiesForCall(breakerKey(e.provider, e.address, e.port, model), this.options, this.store);
  }

  send(model: string | undefined, attempt: Attempt, timeoutMs: number | undefined): Promise<RequestProps> {
    return this.sender.send(model, attempt, timeoutMs);
  }

  abortError(): Error {
    return this.sender.abortError();
  }

  wouldRetry(err: unknown): Promise<boolean | undefined> | undefined {
    return this.sender.wouldRetry?.(err);
  }

  /** The call's response used `usage`: the rate limiter's token reservation becomes what was used. */
  correctRate(result: Pick<LoopResult, "policies"> | undefined, usage: Usage | undefined): void {
    if (!result || this.options.tpm === undefined || !usage || (usage.input === undefined && usage.output === undefined)) return;
    guard("rate correction", () => result.policies.correctRate(this.estimatedTokens, (usage.input ?? 0) + (usage.output ?? 0)));
  }
}
