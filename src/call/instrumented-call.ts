import type { Context } from "@opentelemetry/api";
import type { ClientOverrides, ResilienceOptions } from "../config.js";
import { mergeBreaker } from "../config.js";
import { classify } from "../policy/classify.js";
import { estimateTokens } from "../policy/rate-limiter.js";
import type { Operation, ProviderAdapter, ProviderName, ResponseInfo, StreamAccumulator } from "../providers/types.js";
import type { Runtime } from "../runtime.js";
import { reportOnce } from "../telemetry/logger.js";
import { resumeAfterStreamFailure, runAttempts, type LoopInput, type LoopResult, type RequestProps } from "./attempt-loop.js";
import { guard, LogicalCall, type Attempt } from "./logical-call.js";
import { breakerKey, policiesFor } from "./policies.js";
import { observeStream } from "./stream-observer.js";
import { kBodyOwner, watchResponseClass, type BodyOwner } from "../instrumentation/patch-response.js";

/** Carries the call from the resource's `post()` to `makeRequest()` inside the request options. */
export const kCall = Symbol.for("llm-resilience.call");

/** What we need from one loaded SDK build (CJS and ESM builds are separate). */
export interface SdkKit {
  adapter: ProviderAdapter;
  abortError(): Error;
}

/** What a call needs to know about its client, worked out once per client. */
interface ClientInfo {
  address?: string;
  port?: number;
  provider: ProviderName;
  /** The client's credentials, read when an error message is recorded (never recorded themselves). */
  secrets: () => string[];
}
const clients = new WeakMap<object, ClientInfo>();

function clientInfo(client: any, adapter: ProviderAdapter): ClientInfo {
  let info = clients.get(client);
  if (info) return info;
  info = {
    provider: adapter.provider(client),
    secrets: () => [client?.apiKey, client?.authToken].filter((v): v is string => typeof v === "string" && v.length >= 8),
  };
  try {
    const url = new URL(String(client.baseURL));
    info.address = url.hostname;
    info.port = url.port ? Number(url.port) : url.protocol === "http:" ? 80 : 443;
  } catch {
    // no usable baseURL: leave the server attributes out
  }
  clients.set(client, info);
  return info;
}

const FALLBACK_KINDS = new Set<Operation["kind"]>(["chat", "responses", "messages", "completions"]);

const effective = new WeakMap<object, { base: ResilienceOptions; overrides: ClientOverrides; merged: ResilienceOptions }>();

function effectiveOptions(rt: Runtime, client: object): ResilienceOptions {
  const o: ClientOverrides | undefined = rt.clientOverrides.get(client);
  if (!o) return rt.options;
  const hit = effective.get(client);
  if (hit && hit.base === rt.options && hit.overrides === o) return hit.merged;
  const merged = { ...rt.options, ...o } as ResilienceOptions;
  merged.breaker = mergeBreaker(rt.options.breaker, o.breaker);
  if (o.retryBudget !== undefined) {
    merged.retryBudget = o.retryBudget === false ? false : { ...(rt.options.retryBudget || {}), ...o.retryBudget } as any;
  }
  effective.set(client, { base: rt.options, overrides: o, merged });
  return merged;
}

function maxAttemptsFor(rt: Runtime, client: any, requestOptions: any, effective: ResilienceOptions): number {
  const perRequest = requestOptions?.maxRetries;
  if (typeof perRequest === "number" && perRequest >= 0) return Math.floor(perRequest) + 1;
  const override = rt.clientOverrides.get(client)?.maxAttempts;
  if (override !== undefined) return override;
  const clientExplicit = client?._options?.maxRetries;
  if (typeof clientExplicit === "number" && clientExplicit >= 0) return Math.floor(clientExplicit) + 1;
  if (effective.maxAttempts !== undefined) return effective.maxAttempts;
  const sdkDefault = client?.maxRetries;
  return (typeof sdkDefault === "number" && sdkDefault >= 0 ? Math.floor(sdkDefault) : 2) + 1;
}

function isStream(data: any): boolean {
  // openai <= 4.12's Stream has no `iterator`, only [Symbol.asyncIterator].
  return (
    data !== null &&
    typeof data === "object" &&
    (typeof data.iterator === "function" || typeof data[Symbol.asyncIterator] === "function") &&
    "controller" in data
  );
}

const NULLABLE_HEADERS = Symbol.for("brand.privateNullableHeaders");

/**
 * Request options' headers with the retry index set, in whatever form the SDK passed them: a plain
 * record (openai 4.x, anthropic 0.30), a `Headers`, an array of pairs, or the branded NullableHeaders
 * that the rewritten @anthropic-ai/sdk builds (with BaseAnthropic: 0.137, 1.x checked) pass from
 * messages.create (a plain key spread onto that object is ignored).
 */
function withRetryCount(h: any, value: string): any {
  const name = "X-Stainless-Retry-Count";
  if (h === undefined || h === null) return { [name]: value };
  if (typeof h === "object" && h[NULLABLE_HEADERS] && h.values instanceof Headers) {
    const values = new Headers(h.values);
    values.set(name, value);
    const nulls = new Set<string>(h.nulls);
    nulls.delete(name.toLowerCase());
    return { ...h, values, nulls };
  }
  if (typeof Headers !== "undefined" && h instanceof Headers) {
    const copy = new Headers(h);
    copy.set(name, value);
    return copy;
  }
  if (Array.isArray(h)) return [...h.filter((pair: any) => String(pair?.[0]).toLowerCase() !== name.toLowerCase()), [name, value]];
  if (typeof h === "object") {
    const copy: Record<string, unknown> = {};
    for (const k of Object.keys(h)) if (k.toLowerCase() !== name.toLowerCase()) copy[k] = h[k];
    copy[name] = value;
    return copy;
  }
  return h;
}

/** One instrumented SDK call: telemetry (LogicalCall) + the policy loop + reading the result. */
export class InstrumentedCall implements BodyOwner {
  readonly call: LogicalCall;
  private readonly options: ResilienceOptions;
  private readonly injectedUsage: boolean;
  private result: LoopResult | undefined;
  /** `finish` ran: the SDK parsed the response (JSON read or Stream created). */
  private parsed = false;
  private loopInput: LoopInput | undefined;
  private streamGiveUp: string | undefined;
  private streamRequest = false;
  private readonly estimatedTokens: number;

  private constructor(
    private readonly rt: Runtime,
    private readonly client: any,
    private readonly kit: SdkKit,
    private readonly op: Operation,
    parent: Context,
    readonly requestOptions: any,
  ) {
    const body = requestOptions?.body;
    this.options = effectiveOptions(rt, client);
    const info = clientInfo(client, kit.adapter);
    this.call = new LogicalCall(
      {
        adapter: kit.adapter,
        op,
        provider: info.provider,
        serverAddress: info.address,
        serverPort: info.port,
        captureContent: rt.options.captureContent,
        secrets: info.secrets,
      },
      parent,
      body,
    );
    this.injectedUsage =
      rt.options.openaiStreamUsage && op.kind === "chat" && kit.adapter.sdk === "openai" && body?.stream === true && body.stream_options?.include_usage !== true;
    this.estimatedTokens = this.options.tpm !== undefined ? estimateTokens(body?.messages ?? body?.input ?? body?.prompt, body?.max_tokens ?? body?.max_completion_tokens ?? body?.max_output_tokens) : 0;
  }

  /** Called when the resource's request options resolve; returns the options to send on. */
  static start(rt: Runtime, client: any, kit: SdkKit, op: Operation, parent: Context, opts: any): any {
    const ic = guard("call start", () => new InstrumentedCall(rt, client, kit, op, parent, opts));
    if (!ic) return opts;
    const tagged = { ...opts, [kCall]: ic };
    // The Anthropic SDK's own call span (a client built before we patched its class): never let it
    // reach the request, so it is neither ended nor exported; ours is the call's one GenAI span.
    if (tagged.__span !== undefined) tagged.__span = undefined;
    if (ic.injectedUsage) tagged.body = { ...opts.body, stream_options: { ...opts.body.stream_options, include_usage: true } };
    return tagged;
  }

  /** Replaces the SDK's retry loop: each attempt goes through `sendOnce` with the SDK's retries off. */
  async run(options: any, sendOnce: (inner: any) => Promise<RequestProps>): Promise<RequestProps> {
    const requestModel = this.call.requestModel;
    const fallbackable = requestModel !== undefined && FALLBACK_KINDS.has(this.op.kind);
    const loop = new CallLoop(
      this.call,
      this.kit,
      this.op,
      this.options,
      maxAttemptsFor(this.rt, this.client, options, this.options),
      typeof options.timeout === "number" ? options.timeout : typeof this.client.timeout === "number" ? this.client.timeout : undefined,
      (fallbackable && this.options.fallbacks[requestModel]) || NONE,
      (fallbackable && this.options.contextFallbacks[requestModel]) || NONE,
      this.estimatedTokens,
      clientInfo(this.client, this.kit.adapter),
      options,
      sendOnce,
    );
    this.loopInput = loop;
    this.result = await runAttempts(loop);
    this.streamRequest = isStreamRequest(options);
    const response: any = this.result.props.response;
    if (response && typeof response === "object") {
      guard("watch the response body", () => {
        watchResponseClass(response);
        response[kBodyOwner] = this;
      });
    }
    return this.result.props;
  }

  /** The SDK parsed the response (the `_thenUnwrap` transform): read it, or start observing the stream. */
  finish(data: any): void {
    this.parsed = true;
    if (this.call.ended) return;
    if (isStream(data)) {
      const acc = this.kit.adapter.streamAccumulator(this.op, this.injectedUsage);
      // Held by the registry: must not reach the stream (no closure of this scope), or it never dies.
      const unread: UnreadStream = { call: this, acc, iterated: false };
      const observed = observeStream(
        data,
        acc,
        () => this.call.firstChunk(),
        (outcome) => {
          if (outcome.kind === "error") {
            const failure = classify(outcome.error, this.kit.adapter);
            const reason = this.streamGiveUp ?? (failure.aborted ? "aborted" : "non_retryable");
            this.call.giveUp(reason, failure.errorType);
            this.call.fail(failure.errorType, outcome.error, acc.info);
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
      else unreadStreams.register(data, unread);
      return;
    }
    this.succeed(this.kit.adapter.responseInfo(this.op, data));
  }

  /**
   * The stream failed before anything reached the caller: retry on the same model if the policies
   * allow, and continue the caller's iteration on a stream built by the SDK's own Stream class.
   */
  private async restartStream(stream: any, error: unknown): Promise<AsyncIterator<unknown> | undefined> {
    if (!this.loopInput || !this.result) return undefined;
    const next = await resumeAfterStreamFailure(this.loopInput, this.result, error);
    if ("giveUp" in next) {
      this.streamGiveUp = next.giveUp;
      return undefined;
    }
    this.result = next;
    const p: any = next.props;
    const StreamClass = p.options?.__streamClass ?? stream.constructor;
    // openai <= 4.12: no Stream.fromSSEResponse; its constructor takes (response, controller).
    const fresh =
      typeof StreamClass.fromSSEResponse === "function"
        ? StreamClass.fromSSEResponse(p.response, p.controller, this.client, p.options?.__synthesizeEventData, p.options?.__streamMode)
        : new StreamClass(p.response, p.controller);
    if ("controller" in stream) stream.controller = p.controller; // so the caller's abort() reaches the live request
    return typeof fresh.iterator === "function" ? fresh.iterator() : fresh[Symbol.asyncIterator]();
  }

  /** The caller dropped a stream without ever iterating it (seen at garbage collection): ends as returned. */
  abandoned(acc: StreamAccumulator): void {
    if (this.call.ended) return;
    guard("dropped stream", () => {
      reportOnce("a streamed response was dropped without being read: its span ended when it was garbage-collected");
      this.succeed(acc.info);
    });
  }

  private succeed(info: ResponseInfo): void {
    if (info.errorType !== undefined) this.call.fail(info.errorType, undefined, info);
    else this.call.succeed(info);
    const u = info.usage;
    if (this.result && this.options.tpm !== undefined && u && (u.input !== undefined || u.output !== undefined)) {
      guard("rate correction", () => this.result!.policies.correctRate(this.estimatedTokens, (u.input ?? 0) + (u.output ?? 0)));
    }
  }

  /**
   * The body may never reach `finish`: malformed JSON makes the SDK throw, and `asResponse()`
   * skips parsing (JSON and streams alike). Once the body has been read by someone other than the
   * SDK's parser, a call still open is ended here. The Response class's reading methods (`text()`,
   * `json()`, `arrayBuffer()`, `bytes()`, `blob()`, `formData()`) tell us of every read of a tagged
   * response (src/instrumentation/patch-response.ts).
   */
  bodyRead(method: string, read: Promise<unknown>): void {
    if (this.call.ended) return;
    const stream = this.streamRequest;
    // After the SDK's own transform (microtasks) has had its turn to end the call with the data.
    read.then(
      (body) => setImmediate(() => this.afterBodyRead(method, body, undefined, stream)),
      (err) => setImmediate(() => this.afterBodyRead(method, undefined, err, stream)),
    );
  }

  /**
   * `response.body` of a tagged response: an observer that passes the bytes through. The SDK's
   * parser also reads `body` (streams) and may touch it before `finish` (a debug log argument), so
   * the observer reads nothing until read from, and the getter gives way once `finish` ran.
   */
  bodyStream(original: ReadableStream): ReadableStream {
    return this.observeBody(original, this.streamRequest);
  }

  /** The body observer still stands in for `response.body` (the SDK has not parsed, the call is open). */
  bodyStreamOpen(): boolean {
    return !this.parsed && !this.call.ended;
  }

  private observeBody(original: ReadableStream, stream: boolean): ReadableStream {
    const ic = this;
    let reader: ReadableStreamDefaultReader | undefined;
    let first = true;
    return new ReadableStream(
      {
        async pull(ctrl) {
          reader ??= original.getReader();
          let r: ReadableStreamReadResult<unknown>;
          try {
            r = await reader.read();
          } catch (err) {
            ctrl.error(err);
            ic.afterBodyStream(err);
            return;
          }
          if (r.done) {
            ctrl.close();
            ic.afterBodyStream(undefined);
            return;
          }
          if (first && stream) {
            first = false;
            if (!ic.parsed) guard("first chunk", () => ic.call.firstChunk());
          }
          ctrl.enqueue(r.value);
        },
        cancel(reason) {
          ic.afterBodyStream(undefined);
          return reader ? reader.cancel(reason) : original.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
  }

  private afterBodyStream(err: unknown): void {
    if (this.parsed || this.call.ended) return;
    guard("body end", () => {
      if (err !== undefined) {
        this.call.fail(classify(err, this.kit.adapter).errorType, err);
        return;
      }
      reportOnce("a response body was read outside the SDK's parser; its usage is not recorded");
      this.succeed({});
    });
  }

  private afterBodyRead(method: string, body: unknown, err: unknown, stream: boolean): void {
    if (this.call.ended) return;
    guard("body read", () => {
      if (err !== undefined) {
        const failure = classify(err, this.kit.adapter);
        this.call.fail(failure.errorType, err);
        return;
      }
      let text: string | undefined;
      if (typeof body === "string") text = body;
      else if (body instanceof ArrayBuffer || body instanceof Uint8Array) text = new TextDecoder().decode(body);
      if (stream) {
        // Read by the application itself (asResponse on a stream): read the SSE events it got.
        this.succeed(text !== undefined ? this.infoFromSse(text) : {});
        return;
      }
      let data: unknown = method === "json" ? body : undefined;
      if (text !== undefined) {
        try {
          data = JSON.parse(text);
        } catch (parseErr) {
          // The SDK's parser threw on this body (or the application got a body that is not JSON).
          this.call.fail("_OTHER", parseErr);
          return;
        }
      }
      // Read by the application itself (asResponse): the call succeeded; read what the body says.
      this.succeed(data !== undefined ? this.kit.adapter.responseInfo(this.op, data) : {});
    });
  }

  /** Runs the stream reader over an SSE body read as a whole (asResponse + text()). */
  private infoFromSse(text: string): ResponseInfo {
    const acc = this.kit.adapter.streamAccumulator(this.op, this.injectedUsage);
    for (const line of text.split("\n")) {
      if (!line.startsWith("data:")) continue;
      const payload = line.slice(5).trim();
      if (payload === "" || payload === "[DONE]") continue;
      try {
        acc.add(JSON.parse(payload));
      } catch {
        // not JSON: skip the line
      }
    }
    return acc.info;
  }
}

const NONE: readonly string[] = [];

interface UnreadStream {
  readonly call: InstrumentedCall;
  readonly acc: StreamAccumulator;
  iterated: boolean;
}

/** Streams returned to the caller: one never iterated ends its call when it is garbage-collected. */
const unreadStreams = new FinalizationRegistry<UnreadStream>((u) => {
  if (!u.iterated) u.call.abandoned(u.acc);
});

/** What the attempt loop needs from one call: its settings, and how to send one attempt through the SDK. */
class CallLoop implements LoopInput {
  readonly adapter: ProviderAdapter;
  readonly signal: AbortSignal | undefined;
  readonly model: string | undefined;

  constructor(
    readonly call: LogicalCall,
    private readonly kit: SdkKit,
    private readonly op: Operation,
    readonly options: ResilienceOptions,
    readonly maxAttempts: number,
    readonly sdkTimeoutMs: number | undefined,
    readonly fallbacks: readonly string[],
    readonly contextFallbacks: readonly string[],
    readonly estimatedTokens: number,
    private readonly client: ClientInfo,
    /** The SDK's request options for this call, and its makeRequest for one attempt. */
    private readonly sdkOptions: any,
    private readonly sendOnce: (inner: any) => Promise<RequestProps>,
  ) {
    this.adapter = kit.adapter;
    this.signal = sdkOptions.signal ?? undefined;
    this.model = call.requestModel;
  }

  policiesFor(model: string | undefined) {
    return policiesFor(breakerKey(this.client.provider, this.client.address, this.client.port, model), this.options);
  }

  abortError(): Error {
    return this.kit.abortError();
  }

  send(model: string | undefined, attempt: Attempt, timeoutMs: number | undefined): Promise<RequestProps> {
    const options = this.sdkOptions;
    const inner: any = { ...options, [kCall]: undefined, maxRetries: 0 };
    // Only when ours is shorter than what the SDK applies anyway: an explicit timeout also makes
    // openai send an X-Stainless-Timeout header the application never asked for.
    if (timeoutMs !== undefined && timeoutMs !== this.sdkTimeoutMs) inner.timeout = Math.max(1, Math.floor(timeoutMs));
    if (model !== this.model && model !== undefined) inner.body = this.adapter.withModel(this.op, options.body, model);
    if (attempt.number > 1) inner.headers = withRetryCount(inner.headers, String(attempt.number - 1));
    return this.call.within(attempt, this.sendOnce, inner);
  }
}

function isStreamRequest(options: any): boolean {
  return options?.stream === true || options?.body?.stream === true;
}
