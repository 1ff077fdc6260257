import type { ResilienceOptions } from "../config.js";
import type { StateStore } from "../policy/store.js";
import type { Operation, ProviderAdapter } from "../providers/types.js";
import type { Attempt, CallRecorder } from "../telemetry/call-recorder.js";
import type { LoopInput, RequestProps } from "./attempt-loop.js";
import type { ClientInfo } from "./client-info.js";
import { breakerKey, type KeyPolicies, policiesForCall } from "./key-policies.js";
import type { Preflight } from "./preflight.js";
import { kCall, type SdkAttempts, type SdkKit } from "./sdk-kit.js";

export interface CallLoopSettings {
  recorder: CallRecorder;
  kit: SdkKit;
  op: Operation;
  options: ResilienceOptions;
  /** Where the policies keep their state: the runtime's store (in process, or Redis). */
  store: StateStore<any>;
  maxAttempts: number;
  sdkTimeoutMs: number | undefined;
  fallbacks: readonly string[];
  contextFallbacks: readonly string[];
  estimatedTokens: number;
  /** Validation and the spend limit (absent when both are off). */
  preflight?: Preflight;
  client: ClientInfo;
  /** The SDK's request options for this call. */
  sdkOptions: any;
  /** The client's own request machinery, one attempt at a time. */
  sdk: SdkAttempts;
}

/** What the attempt loop needs from one call: its settings, and how to send one attempt through the SDK. */
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
  /** The options every attempt sends (see SdkAttempts): the caller's, adjusted per attempt. */
  private inner: any;

  constructor(private readonly s: CallLoopSettings) {
    this.recorder = s.recorder;
    this.adapter = s.kit.adapter;
    this.options = s.options;
    this.maxAttempts = s.maxAttempts;
    this.sdkTimeoutMs = s.sdkTimeoutMs;
    this.signal = s.sdkOptions.signal ?? undefined;
    this.model = s.recorder.requestModel;
    this.fallbacks = s.fallbacks;
    this.contextFallbacks = s.contextFallbacks;
    this.estimatedTokens = s.estimatedTokens;
    this.preflight = s.preflight;
  }

  policiesFor(model: string | undefined): KeyPolicies {
    const c = this.s.client;
    return policiesForCall(breakerKey(c.provider, c.address, c.port, model), this.options, this.s.store);
  }

  abortError(): Error {
    return (this.signal && this.s.sdk.abortError(this.signal)) ?? this.s.kit.abortError();
  }

  send(model: string | undefined, attempt: Attempt, timeoutMs: number | undefined): Promise<RequestProps> {
    const options = this.s.sdkOptions;
    this.inner ??= { ...options, [kCall]: undefined };
    const inner = this.inner;
    // The SDK numbers an attempt maxRetries - retriesRemaining, and sends each with none remaining: it
    // builds X-Stainless-Retry-Count itself, honouring the caller's value or null as its own loop does.
    inner.maxRetries = attempt.number - 1;
    // Only when ours is shorter than what the SDK applies anyway: an explicit timeout also makes
    // openai send an X-Stainless-Timeout header the application never asked for.
    if (timeoutMs !== undefined && timeoutMs !== this.sdkTimeoutMs) inner.timeout = Math.max(1, Math.floor(timeoutMs));
    else if ("timeout" in options) inner.timeout = options.timeout;
    else delete inner.timeout;
    inner.body = model !== this.model && model !== undefined ? this.adapter.withModel(this.s.op, options.body, model) : options.body;
    const first = attempt.number === 1;
    return this.recorder.within(attempt, (o) => this.s.sdk.send(o, first), inner);
  }

  wouldRetry(err: unknown): Promise<boolean | undefined> | undefined {
    return this.inner === undefined ? undefined : this.s.sdk.wouldRetry(this.inner, err);
  }
}
