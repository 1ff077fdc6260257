import type { Context } from "@opentelemetry/api";
import type { ResilienceOptions } from "../config.js";
import { classify } from "../providers/classify.js";
import type { Operation, ProviderAdapter, ResponseInfo, StreamAccumulator } from "../providers/types.js";
import type { Runtime } from "../runtime.js";
import { CallRecorder, guard } from "../telemetry/call-recorder.js";
import { reportOnce } from "../telemetry/logger.js";
import { type LoopResult, type RequestProps, resumeAfterStreamFailure, runAttempts } from "./attempt-loop.js";
import { CallLoop } from "./call-loop.js";
import { effectiveOptions, isStreamRequest, maxAttemptsFor, sdkTimeoutFor } from "./call-options.js";
import { type ClientInfo, clientInfo } from "./client-info.js";
import { endWhenUnread } from "./dropped-responses.js";
import { endWhenDropped, type UnreadStream } from "./dropped-streams.js";
import { currentScope, withScope } from "./policy-scope.js";
import { type Preflight, preflightFor } from "./preflight.js";
import { type BodyCall, ResponseBody } from "./response-body.js";
import { kCall, type SdkAttempts, type SdkKit } from "./sdk-kit.js";
import { SdkSender } from "./sdk-sender.js";
import { observeStream } from "./stream-observer.js";
import { isStream, iteratorOnRetriedResponse } from "./stream-restart.js";

/** One instrumented SDK call: its recorder (telemetry), the attempt loop, and reading the result. */
export class InstrumentedCall implements BodyCall {
  readonly recorder: CallRecorder;
  readonly adapter: ProviderAdapter;
  readonly injectedUsage: boolean;
  /** Observes reads of the final response's body outside the SDK's parser (set once the attempts are done). */
  responseBody: ResponseBody | undefined;
  /** The caller never asked for the raw Response: the SDK's parser reads the body (set by the client patch). */
  bodyLeftToSdk = false;
  private readonly options: ResilienceOptions;
  /** The last attempt's result, without its response (which must stay collectable: see endWhenUnread). */
  private result: Omit<LoopResult, "props"> | undefined;
  private sdkParsed = false;
  private streamRequest = false;
  private loop: CallLoop | undefined;
  private sdk: SdkAttempts | undefined;
  private streamGiveUp: string | undefined;
  private readonly info: ClientInfo;
  private readonly preflight: Preflight | undefined;

  private constructor(
    private readonly rt: Runtime,
    private readonly client: any,
    private readonly kit: SdkKit,
    readonly op: Operation,
    parent: Context,
    requestOptions: any,
  ) {
    const body = requestOptions?.body;
    this.adapter = kit.adapter;
    this.options = withScope(effectiveOptions(rt, client), currentScope());
    const info = clientInfo(client, kit.adapter);
    this.info = info;
    const { preflight, pricing } = preflightFor(rt, this.options, kit.adapter, op, body);
    this.preflight = preflight;
    this.recorder = new CallRecorder(
      {
        adapter: kit.adapter,
        op,
        provider: info.provider,
        serverAddress: info.address,
        serverPort: info.port,
        captureContent: rt.options.captureContent,
        secrets: info.secrets,
        pricing,
      },
      parent,
      body,
    );
    this.injectedUsage =
      rt.options.openaiStreamUsage &&
      op.kind === "chat" &&
      kit.adapter.sdk === "openai" &&
      body?.stream === true &&
      body.stream_options?.include_usage !== true;
  }

  /** Called when the resource's request options resolve; returns the options to send on. */
  static start(rt: Runtime, client: any, kit: SdkKit, op: Operation, parent: Context, opts: any): any {
    const ic = guard("call start", () => new InstrumentedCall(rt, client, kit, op, parent, opts));
    if (!ic) return opts;
    // A spread, then the key set on its own: a literal with a computed key costs V8 a runtime call.
    const tagged = { ...opts };
    tagged[kCall] = ic;
    // The Anthropic SDK's own call span (a client built before we patched its class): never let it
    // reach the request, so it is neither ended nor exported; ours is the call's one GenAI span.
    if (tagged.__span !== undefined) tagged.__span = undefined;
    if (ic.injectedUsage) tagged.body = { ...opts.body, stream_options: { ...opts.body.stream_options, include_usage: true } };
    return tagged;
  }

  /** The SDK parsed the response (JSON read or Stream created). */
  get parsed(): boolean {
    return this.sdkParsed;
  }

  /**
   * Replaces the SDK's retry loop: each attempt goes through the client's own `sdk.send` with its retries
   * off. Resolves with the last attempt's props, handed out (see settle).
   */
  run(options: any, sdk: SdkAttempts): Promise<RequestProps> {
    const sdkTimeoutMs = sdkTimeoutFor(this.client, options);
    const loop = new CallLoop({
      recorder: this.recorder,
      adapter: this.adapter,
      op: this.op,
      options: this.options,
      store: this.rt.store,
      endpoint: this.info,
      body: options.body,
      maxAttempts: maxAttemptsFor(this.rt, this.client, options, this.options),
      sdkTimeoutMs,
      signal: options.signal ?? undefined,
      preflight: this.preflight,
      sender: new SdkSender(this.recorder, this.kit, this.op, this.client, options, sdkTimeoutMs, sdk),
    });
    this.loop = loop;
    this.sdk = sdk;
    this.streamRequest = isStreamRequest(options);
    return runAttempts(loop, this);
  }

  /** The attempts are done: the response goes to the SDK's parser or the caller, watched. */
  settle(result: LoopResult): RequestProps {
    const props = this.handOut(result);
    guard("response hand-over", () => this.sdk?.handOver(this, props));
    return props;
  }

  /**
   * The last attempt's response failed as the SDK read its body — openai's timeout while reading a JSON
   * body, a connection broken mid-body (Anthropic) — where the SDK's own loop retries: retry if the
   * policies allow. Returns the new attempt's props, or the error the call ends with.
   */
  async retryBody(err: unknown): Promise<{ props: RequestProps } | { error: unknown }> {
    const result = this.result;
    if (!this.loop || !result || this.recorder.ended) return { error: err };
    this.responseBody?.retire();
    const next = await resumeAfterStreamFailure(this.loop, result, err);
    if ("giveUp" in next) {
      this.recorder.giveUp(next.giveUp, next.errorType);
      this.recorder.fail(next.errorType, next.error);
      return { error: next.error };
    }
    return { props: this.handOut(next) };
  }

  /** The error this call's SDK build throws for a connection that failed (APIConnectionError). */
  connectionError(cause?: unknown): Error {
    return this.kit.connectionError(cause);
  }

  /** Keeps the result (without its response) for retries after a failed read, and watches the response. */
  private handOut(r: LoopResult): RequestProps {
    const props = r.props;
    this.result = { attempt: r.attempt, policies: r.policies, model: r.model, retryIndex: r.retryIndex, deadline: r.deadline };
    this.responseBody = new ResponseBody(this, this.streamRequest);
    if (props.response && typeof props.response === "object") endWhenUnread(props.response, this.responseBody);
    return props;
  }

  /** The SDK parsed the response (the `_thenUnwrap` transform): read it, or start observing the stream. */
  finish(data: any): void {
    this.sdkParsed = true;
    if (this.recorder.ended) return;
    if (!isStream(data)) {
      this.succeed(this.adapter.responseInfo(this.op, data));
      return;
    }
    const acc = this.adapter.streamAccumulator(this.op, this.injectedUsage);
    const unread: UnreadStream = { owner: this, acc, iterated: false };
    const observed = observeStream(
      data,
      acc,
      () => this.recorder.firstChunk(),
      (outcome) => {
        if (outcome.kind === "error") {
          const failure = classify(outcome.error, this.adapter);
          const reason = this.streamGiveUp ?? (failure.aborted ? "aborted" : "non_retryable");
          this.recorder.giveUp(reason, failure.errorType);
          this.recorder.fail(failure.errorType, outcome.error, acc.info);
        } else {
          // Completed, or stopped by the caller (break, controller.abort(), AbortSignal: the SDKs
          // end an aborted stream's iteration silently, and their helpers break that way): not an error.
          this.succeed(acc.info);
        }
      },
      (error) => this.restartStream(data, error),
      () => {
        unread.iterated = true;
      },
    );
    if (!observed) this.succeed({});
    else endWhenDropped(data, unread);
  }

  /**
   * The stream failed before anything reached the caller: retry on the same model if the policies
   * allow, and continue the caller's iteration on a stream built by the SDK's own Stream class.
   */
  private async restartStream(stream: any, error: unknown): Promise<AsyncIterator<unknown> | undefined> {
    if (!this.loop || !this.result) return undefined;
    const next = await resumeAfterStreamFailure(this.loop, this.result, error);
    if ("giveUp" in next) {
      this.streamGiveUp = next.giveUp;
      return undefined;
    }
    this.result = next;
    return iteratorOnRetriedResponse(stream, next.props, this.client);
  }

  /** The caller dropped a stream without ever iterating it (seen at garbage collection): ends as returned. */
  abandoned(acc: StreamAccumulator): void {
    if (this.recorder.ended) return;
    guard("dropped stream", () => {
      reportOnce("a streamed response was dropped without being read: its span ended when it was garbage-collected");
      this.succeed(acc.info);
    });
  }

  succeed(info: ResponseInfo, at?: number): void {
    if (info.errorType !== undefined) this.recorder.fail(info.errorType, undefined, info);
    else this.recorder.succeed(info, at);
    this.loop?.correctRate(this.result, info.usage);
  }
}
