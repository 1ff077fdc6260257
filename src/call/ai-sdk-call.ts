import { type Context, context, type Span, SpanKind, trace } from "@opentelemetry/api";
import type { ResilienceOptions } from "../config.js";
import {
  type AiSdkFamily,
  type AiSdkMethod,
  AiSdkStreamAccumulator,
  ATTEMPT_TIMEOUT,
  aiSdkAdapters,
  aiSdkOperation,
  aiSdkProviderName,
  headerRecordReader,
} from "../providers/ai-sdk.js";
import type { AiSdkRequest } from "../providers/ai-sdk-request.js";
import type { Operation, ProviderAdapter, ResponseInfo } from "../providers/types.js";
import type { Runtime } from "../runtime.js";
import { type Attempt, CallRecorder, guard } from "../telemetry/call-recorder.js";
import { reportOnce } from "../telemetry/logger.js";
import { ATTR } from "../telemetry/semconv.js";
import { SCOPE } from "../version.js";
import { observePartStream, type PartStreamWatcher } from "./ai-sdk-stream.js";
import { type AttemptSender, type LoopResult, type RequestProps, resumeAfterStreamFailure, runAttempts } from "./attempt-loop.js";
import { CallLoop } from "./call-loop.js";
import { type Endpoint, serverOf } from "./client-info.js";
import { endWhenDropped, type StreamOwner } from "./dropped-streams.js";
import { currentScope, withScope } from "./policy-scope.js";
import { preflightFor } from "./preflight.js";
import type { StreamOutcome } from "./stream-observer.js";

/** One call of a provider model's `doGenerate` / `doStream` / `doEmbed`, as the AI SDK made it. */
export interface AiSdkCallSite {
  readonly family: AiSdkFamily;
  readonly method: AiSdkMethod;
  /** The provider's model object (`this` of the call). */
  readonly model: any;
  /** The AI SDK's call options. */
  readonly options: any;
  /** The provider's own method: one request. */
  readonly original: (this: unknown, options: unknown) => Promise<any>;
  /** The AI SDK call's `maxRetries` (its default filled in), when the AI SDK told us. */
  readonly maxRetries: number | undefined;
  /** The AI SDK's `RetryError` (what its retry loop throws after several tries), when it can be built. */
  retryError(message: string, reason: "maxRetriesExceeded" | "errorNotRetryable", errors: unknown[]): Error | undefined;
}

/** The AI SDK's `maxRetries` default: its retry loop's tries are 1 + 2. */
const AI_SDK_DEFAULT_RETRIES = 2;
const NO_HEADERS = { get: () => null };

/**
 * Runs one provider model call under the policies. The AI SDK's own retry loop sits above this call;
 * ours runs inside it instead, so the error this call ends with is one the AI SDK does not retry.
 */
export function runAiSdkCall(rt: Runtime, site: AiSdkCallSite): Promise<unknown> {
  rt.beforeFirstCall?.();
  const call = guard("call start", () => new AiSdkCall(rt, site));
  if (!call) return site.original.call(site.model, site.options);
  return call.run();
}

type Server = ReturnType<typeof serverOf>;
const servers = new WeakMap<object, Server>();

/** Where a model sends its requests: its config's `baseURL` (anthropic) or `url()` (openai, azure). */
function modelServer(model: any): Server {
  const config = model?.config;
  if (!config || typeof config !== "object") return {};
  let server = servers.get(config);
  if (server) return server;
  try {
    server = serverOf(typeof config.baseURL === "string" ? config.baseURL : config.url?.({ path: "", modelId: model.modelId }));
  } catch {
    server = {}; // a url() that throws: no server attributes
  }
  servers.set(config, server);
  return server;
}

/**
 * The AI SDK's own GenAI span for this model call (@ai-sdk/otel's `chat <model>` span, active while
 * the AI SDK calls the model): the call records into it rather than opening a second GenAI span.
 */
function ownGenAiSpanOf(parent: Context, op: Operation, model: string | undefined): Span | undefined {
  const span = trace.getSpan(parent) as any;
  if (!span?.isRecording?.() || span.ended === true || span.kind !== SpanKind.CLIENT) return undefined;
  if (span.instrumentationScope?.name === SCOPE) return undefined;
  const a = span.attributes;
  return a?.[ATTR.OPERATION] === op.name && a?.[ATTR.REQUEST_MODEL] === model ? span : undefined;
}

/** The same model object asking for another model id (a fallback): the provider reads `this.modelId`. */
function withModelId(model: object, modelId: string): object {
  return Object.create(model, { modelId: { value: modelId, enumerable: true } });
}

function attemptTimeoutError(ms: number): Error {
  const e = new Error(`Request timed out after ${ms} ms (llm-resilience attempt timeout)`);
  e.name = "TimeoutError";
  Object.defineProperty(e, ATTEMPT_TIMEOUT, { value: true });
  return e;
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === "string") return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}

class AiSdkCall implements AttemptSender, StreamOwner {
  readonly recorder: CallRecorder;
  private readonly adapter: ProviderAdapter;
  private readonly options: ResilienceOptions;
  private readonly signal: AbortSignal | undefined;
  private readonly model: string | undefined;
  private readonly op: Operation;
  private readonly loop: CallLoop;
  /** What each failed attempt threw, in order: the AI SDK's RetryError lists them. */
  private readonly attemptErrors: unknown[] = [];
  private result: LoopResult | undefined;
  private streamGiveUp: string | undefined;

  constructor(
    rt: Runtime,
    private readonly site: AiSdkCallSite,
  ) {
    const providerId = String(site.model?.provider ?? "");
    const o = site.options;
    this.op = aiSdkOperation(providerId, site.method);
    this.adapter = aiSdkAdapters[site.family];
    this.options = withScope(rt.options, currentScope());
    const endpoint: Endpoint = { provider: aiSdkProviderName(site.family, providerId), ...modelServer(site.model) };
    const modelId = typeof site.model?.modelId === "string" ? site.model.modelId : undefined;
    const request: AiSdkRequest = { modelId, options: o, method: site.method };
    const { preflight, pricing } = preflightFor(rt, this.options, this.adapter, this.op, request);
    const parent = context.active();
    this.recorder = new CallRecorder(
      {
        adapter: this.adapter,
        op: this.op,
        provider: endpoint.provider,
        serverAddress: endpoint.address,
        serverPort: endpoint.port,
        captureContent: rt.options.captureContent,
        pricing,
      },
      parent,
      request,
      ownGenAiSpanOf(parent, this.op, modelId),
    );
    this.signal = o?.abortSignal ?? undefined;
    this.model = this.recorder.requestModel;
    this.loop = new CallLoop({
      recorder: this.recorder,
      adapter: this.adapter,
      op: this.op,
      options: this.options,
      store: rt.store,
      endpoint,
      body: request,
      maxAttempts: this.attemptsLimit(),
      sdkTimeoutMs: undefined,
      signal: this.signal,
      preflight,
      sender: this,
    });
  }

  /**
   * Attempts per model: the call's `maxRetries` + 1 when the AI SDK told us one other than its default,
   * else our `maxAttempts`, else the AI SDK's default. (It reports its default filled in, so an explicit
   * `maxRetries: 2` reads as the default.)
   */
  private attemptsLimit(): number {
    const m = this.site.maxRetries;
    if (m !== undefined && m >= 0 && (m !== AI_SDK_DEFAULT_RETRIES || this.options.maxAttempts === undefined)) return Math.floor(m) + 1;
    if (m === undefined) {
      reportOnce(
        "an AI SDK call did not publish its maxRetries (ai 6, generateObject / streamObject, or experimental_telemetry disabled): such calls make up to maxAttempts attempts (LLM_RESILIENCE_MAX_ATTEMPTS, default 3)",
      );
    }
    return this.options.maxAttempts ?? AI_SDK_DEFAULT_RETRIES + 1;
  }

  /** What `fetch` rejects with when the caller's signal aborts: the signal's reason. */
  abortError(): Error {
    const reason = this.signal?.reason;
    return reason instanceof Error ? reason : new DOMException("This operation was aborted", "AbortError");
  }

  async send(model: string | undefined, attempt: Attempt, timeoutMs: number | undefined): Promise<RequestProps> {
    const { site } = this;
    const target = model === undefined || model === this.model ? site.model : withModelId(site.model, model);
    let options = site.options;
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs !== undefined) {
      const ms = Math.max(1, Math.floor(timeoutMs));
      const own = new AbortController();
      // Ref'd on purpose: a caller is awaiting this attempt; it is cleared as soon as the attempt settles.
      timer = setTimeout(() => own.abort(attemptTimeoutError(ms)), ms);
      options = { ...options, abortSignal: this.signal ? AbortSignal.any([this.signal, own.signal]) : own.signal };
    }
    try {
      const value = await this.recorder.within(attempt, (o) => site.original.call(target, o), options);
      return { response: { status: 200, headers: headerRecordReader(value?.response?.headers) ?? NO_HEADERS }, value };
    } catch (err) {
      this.attemptErrors.push(err);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async run(): Promise<unknown> {
    try {
      this.result = await runAttempts(this.loop);
    } catch (err) {
      throw this.finalError(err);
    }
    const value: any = this.result.props.value;
    if (this.site.method !== "doStream") {
      this.succeed(this.adapter.responseInfo(this.op, value));
      return value;
    }
    const stream = guard("observe stream", () => this.observe(value?.stream));
    // The call outlives its stream only as a garbage-collection watcher: it must not keep the stream.
    this.result.props.value = undefined;
    if (!stream) {
      this.succeed({});
      return value;
    }
    return { ...value, stream };
  }

  private acc = new AiSdkStreamAccumulator();

  private observe(source: unknown): ReadableStream | undefined {
    if (!(source instanceof ReadableStream)) return undefined;
    const call = this;
    const watcher: PartStreamWatcher = {
      get acc() {
        return call.acc;
      },
      firstChunk: () => this.recorder.firstChunk(),
      restart: (error) => this.restartStream(error),
      end: (outcome) => this.streamEnded(outcome),
    };
    const observed = observePartStream(source, watcher);
    // The AI SDK does not cancel a model stream its caller stopped reading (an early `break`): the
    // stream is left to the garbage collector, and the call ends then with what had arrived.
    endWhenDropped(observed, { owner: this, acc: this.acc, iterated: false });
    return observed;
  }

  /** The stream failed before any output: retry on the same model if the policies allow. */
  private async restartStream(error: unknown): Promise<ReadableStream | undefined> {
    if (!this.result) return undefined;
    const next = await resumeAfterStreamFailure(this.loop, this.result, error);
    if ("giveUp" in next) {
      this.streamGiveUp = next.giveUp;
      return undefined;
    }
    this.result = next;
    this.acc = new AiSdkStreamAccumulator();
    const stream = (next.props.value as any)?.stream;
    next.props.value = undefined;
    return stream instanceof ReadableStream ? stream : undefined;
  }

  private streamEnded(outcome: StreamOutcome): void {
    const info = this.acc.info;
    if (outcome.kind !== "error") {
      this.succeed(info);
      return;
    }
    const failure = this.adapter.classify!(outcome.error);
    if (failure.aborted && failure.errorType === "aborted" && this.recorder.streamStarted) {
      // Stopped by the caller once output had arrived: what it received is the call's result.
      this.succeed(info);
      return;
    }
    this.recorder.giveUp(this.streamGiveUp ?? (failure.aborted ? "aborted" : "non_retryable"), failure.errorType);
    this.recorder.fail(failure.errorType, outcome.error, info);
  }

  /** The stream was dropped before its end (seen at garbage collection): the call ends as returned. */
  abandoned(): void {
    if (this.recorder.ended) return;
    guard("dropped stream", () => this.succeed(this.acc.info));
  }

  private succeed(info: ResponseInfo): void {
    this.recorder.succeed(info);
    this.loop.correctRate(this.result, info.usage);
  }

  /**
   * What the AI SDK gets when the policies gave up: after several attempts, the AI SDK's own
   * `RetryError` (what its loop throws, listing every attempt's error); after one, that attempt's
   * error, marked not retryable (`isRetryable: false`) so the AI SDK's loop does not try again.
   * Errors of ours (breaker open, deadline) and aborts pass as they are.
   */
  private finalError(err: unknown): unknown {
    const errors = this.attemptErrors;
    if (errors.length === 0 || errors[errors.length - 1] !== err) return err;
    return (
      guard("final error", () => {
        const failure = this.adapter.classify!(err);
        if (failure.aborted) return err;
        if (errors.length > 1) {
          const message = messageOf(err);
          const wrapped = failure.retryable
            ? this.site.retryError(`Failed after ${errors.length} attempts. Last error: ${message}`, "maxRetriesExceeded", [...errors])
            : this.site.retryError(`Failed after ${errors.length} attempts with non-retryable error: '${message}'`, "errorNotRetryable", [...errors]);
          if (wrapped) return wrapped;
        }
        if (this.site.maxRetries !== 0 && (err as any)?.isRetryable === true) {
          Object.defineProperty(err, "isRetryable", { value: false, writable: true, configurable: true, enumerable: true });
        }
        return err;
      }) ?? err
    );
  }
}
