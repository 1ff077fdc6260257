import type { Operation } from "../providers/types.js";
import type { Attempt, CallRecorder } from "../telemetry/call-recorder.js";
import type { AttemptSender, RequestProps } from "./attempt-loop.js";
import { kCall, type SdkAttempts, type SdkKit } from "./sdk-kit.js";

/** Sends a call's attempts through the SDK client's own machinery, one at a time, on one options object. */
export class SdkSender implements AttemptSender {
  /** The options every attempt sends (see SdkAttempts): the caller's, adjusted per attempt. */
  private inner: any;
  private readonly signal: AbortSignal | undefined;

  constructor(
    private readonly recorder: CallRecorder,
    private readonly kit: SdkKit,
    private readonly op: Operation,
    private readonly client: unknown,
    /** The SDK's request options for this call. */
    private readonly sdkOptions: any,
    private readonly sdkTimeoutMs: number | undefined,
    /** The client's own request machinery, one attempt at a time. */
    private readonly sdk: SdkAttempts,
  ) {
    this.signal = sdkOptions.signal ?? undefined;
  }

  abortError(): Error {
    return (this.signal && this.sdk.abortError(this.client, this.signal)) ?? this.kit.abortError();
  }

  send(model: string | undefined, attempt: Attempt, timeoutMs: number | undefined): Promise<RequestProps> {
    const options = this.sdkOptions;
    let inner = this.inner;
    if (inner === undefined) {
      inner = this.inner = { ...options };
      inner[kCall] = undefined;
    }
    // The SDK numbers an attempt maxRetries - retriesRemaining, and sends each with none remaining: it
    // builds X-Stainless-Retry-Count itself, honouring the caller's value or null as its own loop does.
    inner.maxRetries = attempt.number - 1;
    // Only when ours is shorter than what the SDK applies anyway: an explicit timeout also makes
    // openai send an X-Stainless-Timeout header the application never asked for.
    if (timeoutMs !== undefined && timeoutMs !== this.sdkTimeoutMs) inner.timeout = Math.max(1, Math.floor(timeoutMs));
    else if ("timeout" in options) inner.timeout = options.timeout;
    else delete inner.timeout;
    inner.body =
      model !== this.recorder.requestModel && model !== undefined ? this.kit.adapter.withModel(this.op, options.body, model) : options.body;
    return this.recorder.within(attempt, this.sendAttempt, attempt.number === 1);
  }

  /** Sends the prepared options (bound once: `within` calls it with the attempt's context active). */
  private readonly sendAttempt = (first: boolean): Promise<RequestProps> => this.sdk.send(this.client, this.inner, first);

  wouldRetry(err: unknown): Promise<boolean | undefined> | undefined {
    return this.inner === undefined ? undefined : this.sdk.wouldRetry(this.client, this.inner, err);
  }
}
