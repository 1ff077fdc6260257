import type { ResilienceOptions } from "../config.js";
import type { StateStore } from "../policy/store.js";
import type { Operation, ProviderAdapter } from "../providers/types.js";
import type { Attempt, CallRecorder } from "../telemetry/call-recorder.js";
import type { LoopInput, RequestProps } from "./attempt-loop.js";
import type { ClientInfo } from "./client-info.js";
import { breakerKey, type KeyPolicies, policiesFor } from "./key-policies.js";
import { stateOwner } from "./policy-scope.js";
import type { Preflight } from "./preflight.js";
import { withRetryCount } from "./retry-count-header.js";
import { kCall, type SdkKit } from "./sdk-kit.js";

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
  /** The SDK's makeRequest for one attempt. */
  sendOnce: (inner: any) => Promise<RequestProps>;
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
    const owner = stateOwner(this.options);
    const policies = policiesFor(breakerKey(c.provider, c.address, c.port, model), owner, this.s.store);
    if (owner === this.options) return policies;
    // A `withPolicies` scope may turn the breaker or the retry budget off for this call.
    return policies.without(this.options.breaker === false && owner.breaker !== false, this.options.retryBudget === false && owner.retryBudget !== false);
  }

  abortError(): Error {
    return this.s.kit.abortError();
  }

  send(model: string | undefined, attempt: Attempt, timeoutMs: number | undefined): Promise<RequestProps> {
    const options = this.s.sdkOptions;
    const inner: any = { ...options, [kCall]: undefined, maxRetries: 0 };
    // Only when ours is shorter than what the SDK applies anyway: an explicit timeout also makes
    // openai send an X-Stainless-Timeout header the application never asked for.
    if (timeoutMs !== undefined && timeoutMs !== this.sdkTimeoutMs) inner.timeout = Math.max(1, Math.floor(timeoutMs));
    if (model !== this.model && model !== undefined) inner.body = this.adapter.withModel(this.s.op, options.body, model);
    if (attempt.number > 1) inner.headers = withRetryCount(inner.headers, String(attempt.number - 1));
    return this.recorder.within(attempt, this.s.sendOnce, inner);
  }
}
