import {
  type Attributes,
  type Context,
  context,
  INVALID_SPAN_CONTEXT,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from "@opentelemetry/api";
import type { Operation, ProviderAdapter, ProviderName, ResponseInfo, Usage } from "../providers/types.js";
import { SCOPE, VERSION } from "../version.js";
import { type DecisionSource, emitDecision, hasDecisionListeners } from "./decisions.js";
import { getInstruments } from "./instruments.js";
import { log, logLevelEnabled, reportOnce } from "./logger.js";
import { costLabels, type MetricLabels, metricLabels, withErrorType } from "./metric-labels.js";
import { ATTR, EVENT } from "./semconv.js";

let tracerOwner: unknown;
let cachedTracer: Tracer | undefined;
/** Our tracer, looked up again only when the global tracer provider (or the proxy's delegate) changes. */
function tracer(): Tracer {
  const provider = trace.getTracerProvider() as TracerProvider & { getDelegate?: () => TracerProvider };
  const owner = typeof provider.getDelegate === "function" ? provider.getDelegate() : provider;
  if (owner !== tracerOwner || !cachedTracer) {
    tracerOwner = owner;
    cachedTracer = trace.getTracer(SCOPE, VERSION);
  }
  return cachedTracer;
}

/** `http.response.header.<name>`, built once per header name. */
const headerAttributeNames = new Map<string, string>();
function headerAttribute(h: string): string {
  let name = headerAttributeNames.get(h);
  if (name === undefined) {
    name = `http.response.header.${h}`;
    headerAttributeNames.set(h, name);
  }
  return name;
}

/** A span even when the tracing pipeline throws (a SpanProcessor's onStart): a non-recording one. */
function startSpan(name: string, options: SpanOptions, ctx: Context): Span {
  try {
    return tracer().startSpan(name, options, ctx);
  } catch (err) {
    reportOnce("telemetry error starting a span", err);
    return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
  }
}

/** A SpanProcessor's onEnd may throw; that is never the caller's business. `at`: a performance.now() time. */
function endSpan(span: Span, at?: number): void {
  try {
    span.end(at);
  } catch (err) {
    reportOnce("telemetry error ending a span", err);
  }
}

/** One HTTP attempt: its child span and what it asked for. */
export interface Attempt {
  readonly number: number;
  readonly model: string | undefined;
  readonly span: Span;
  readonly ctx: Context;
  ended: boolean;
}

export interface CallIdentity {
  adapter: ProviderAdapter;
  op: Operation;
  provider: ProviderName;
  serverAddress?: string;
  serverPort?: number;
  captureContent: boolean;
  /** The client's credentials (read when an error message is recorded): never recorded, even when a provider echoes them. */
  secrets?: () => string[];
  /** Prices responses; without it no cost is recorded. */
  pricing?: CallPricing;
}

/** What a response cost, split as `llm_resilience.cost` records it. */
export interface ResponseCost {
  readonly inputUsd: number;
  readonly outputUsd: number;
}

/** Prices a call's responses for its recorder, and hears what the call cost in total when it ends. */
export interface CallPricing {
  /** Undefined when the model has no price. */
  cost(usage: Usage, responseModel: string | undefined, attemptModel: string | undefined): ResponseCost | undefined;
  ended(totalUsd: number): void;
}

function usageAttributes(u: Usage | undefined, out: Attributes): Attributes {
  if (!u) return out;
  if (u.input !== undefined) out[ATTR.USAGE_INPUT] = u.input;
  if (u.output !== undefined) out[ATTR.USAGE_OUTPUT] = u.output;
  if (u.cacheRead !== undefined) out[ATTR.USAGE_CACHE_READ] = u.cacheRead;
  if (u.cacheCreation !== undefined) out[ATTR.USAGE_CACHE_CREATION] = u.cacheCreation;
  if (u.reasoning !== undefined) out[ATTR.USAGE_REASONING] = u.reasoning;
  return out;
}

function responseAttributes(info: ResponseInfo): Attributes {
  const a: Attributes = {};
  if (info.id !== undefined) a[ATTR.RESPONSE_ID] = info.id;
  if (info.model !== undefined) a[ATTR.RESPONSE_MODEL] = info.model;
  if (info.finishReasons !== undefined) a[ATTR.RESPONSE_FINISH_REASONS] = info.finishReasons;
  return usageAttributes(info.usage, a);
}

/** Runs a telemetry step; our own failure is reported once and never reaches the caller. */
export function guard<T>(what: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    reportOnce(`telemetry error in ${what}`, err);
    return undefined;
  }
}

/**
 * The telemetry of one logical SDK call: the CLIENT span, its attempt children, the decision events,
 * metrics and the log line. Knows nothing about policies; the attempt loop tells it what happened.
 */
export class CallRecorder implements DecisionSource {
  readonly span: Span;
  readonly ctx: Context;
  readonly requestModel: string | undefined;
  private readonly start = performance.now();
  private attemptCount = 0;
  private retryCount = 0;
  private current: Attempt | undefined;
  private firstChunkAt: number | undefined;
  /** Sum of the priced responses' costs; undefined while none was priced. */
  private costUsd: number | undefined;
  ended = false;
  /** The breaker key the call is on now (the loop sets it per model): the context of its decisions. */
  breakerKey: string | undefined;
  /** The span is someone else's (see the constructor): recorded into, never ended here. */
  private readonly adopted: boolean;

  /**
   * `adopt`: a GenAI span another library opened for this very call (the AI SDK's own `chat <model>`
   * span): it becomes the call's span, so the call has one GenAI span, not two. Its owner ends it.
   */
  constructor(
    readonly id: CallIdentity,
    parent: Context,
    body: unknown,
    adopt?: Span,
  ) {
    this.requestModel = id.adapter.requestModel(id.op, body);
    const attributes = id.adapter.requestAttributes(id.op, body);
    attributes[ATTR.OPERATION] = id.op.name;
    attributes[ATTR.PROVIDER] = id.provider;
    if (this.requestModel !== undefined) attributes[ATTR.REQUEST_MODEL] = this.requestModel;
    if (id.serverAddress !== undefined) attributes[ATTR.SERVER_ADDRESS] = id.serverAddress;
    if (id.serverPort !== undefined) attributes[ATTR.SERVER_PORT] = id.serverPort;
    this.adopted = adopt !== undefined;
    if (adopt) {
      this.span = adopt;
      guard("adopt span", () => adopt.setAttributes(attributes));
      this.ctx = parent;
    } else {
      const name = this.requestModel ? `${id.op.name} ${this.requestModel}` : id.op.name;
      this.span = startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent);
      this.ctx = trace.setSpan(parent, this.span);
    }
    if (id.captureContent) {
      guard("content capture", () => {
        const content = id.adapter.requestContent(id.op, body);
        if (content !== undefined) this.span.setAttribute(ATTR.INPUT_MESSAGES, JSON.stringify(content));
      });
    }
  }

  private redact(text: string): string {
    for (const s of this.id.secrets?.() ?? []) text = text.split(s).join("[REDACTED]");
    return text;
  }

  get attempts(): number {
    return this.attemptCount;
  }

  private ownLabels: MetricLabels | undefined;

  /** Label sets of this call's metrics (shared, frozen); `model` is the one an attempt asked for. */
  private labels(model = this.requestModel): MetricLabels {
    if (model === this.requestModel) {
      this.ownLabels ??= metricLabels(this.id.op.name, this.id.provider, model, this.id.serverAddress);
      return this.ownLabels;
    }
    return metricLabels(this.id.op.name, this.id.provider, model, this.id.serverAddress);
  }

  /** Labels shared by this call's metrics (frozen: copy before adding to them). */
  metricAttributes(model = this.requestModel): Attributes {
    return this.labels(model).base;
  }

  startAttempt(model: string | undefined): Attempt {
    const number = ++this.attemptCount;
    const attributes: Attributes = {};
    attributes[ATTR.ATTEMPT_NUMBER] = number;
    if (number > 1) attributes[ATTR.HTTP_RESEND_COUNT] = number - 1;
    if (model !== undefined) attributes[ATTR.REQUEST_MODEL] = model;
    // Named for the model this attempt asked for (the contract's `{operation} {gen_ai.request.model} attempt`): a fallback's differs.
    const asked = model ?? this.requestModel;
    const base = asked ? `${this.id.op.name} ${asked}` : this.id.op.name;
    const span = startSpan(`${base} attempt`, { kind: SpanKind.INTERNAL, attributes }, this.ctx);
    this.current = { number, model, span, ctx: trace.setSpan(this.ctx, span), ended: false };
    return this.current;
  }

  /** Status, request id and rate-limit headers of the attempt's HTTP response. */
  recordResponse(attempt: Attempt, status: number | undefined, headers: { get(n: string): string | null } | undefined): void {
    guard("recordResponse", () => {
      if (status !== undefined) attempt.span.setAttribute(ATTR.HTTP_STATUS, status);
      if (!headers) return;
      const rid = headers.get(this.id.adapter.requestIdHeader);
      if (rid) attempt.span.setAttribute(ATTR.REQUEST_ID, rid);
      for (const h of this.id.adapter.rateLimitHeaders) {
        const v = headers.get(h);
        if (v !== null && v !== undefined) attempt.span.setAttribute(headerAttribute(h), [v]);
      }
    });
  }

  /** Ends an attempt; `responseAttrs` are what its response said (id, model, usage), when it was read. */
  endAttempt(attempt: Attempt, errorType?: string, responseAttrs?: Attributes, at?: number): void {
    if (attempt.ended) return;
    attempt.ended = true;
    guard("endAttempt", () => {
      let attrs = this.metricAttributes(attempt.model);
      if (errorType !== undefined) {
        attempt.span.setAttribute(ATTR.ERROR_TYPE, errorType);
        attempt.span.setStatus({ code: SpanStatusCode.ERROR });
        attrs = withErrorType(attrs, errorType);
      }
      if (responseAttrs) attempt.span.setAttributes(responseAttrs);
      getInstruments().attempts.add(1, attrs);
    });
    endSpan(attempt.span, at);
  }

  event(name: string, attributes: Attributes): void {
    guard("event", () => this.span.addEvent(name, attributes));
    if (hasDecisionListeners()) guard("decision listeners", () => emitDecision(name, attributes, this));
  }

  get provider(): string {
    return this.id.provider;
  }

  get operation(): string {
    return this.id.op.name;
  }

  currentAttempt(): Attempt | undefined {
    return this.current;
  }

  retry(failedAttempt: number, delayMs: number, source: string, errorType: string, model: string | undefined): void {
    this.retryCount++;
    this.event(EVENT.RETRY, {
      [ATTR.ATTEMPT_NUMBER]: failedAttempt,
      [ATTR.RETRY_DELAY_MS]: Math.round(delayMs),
      [ATTR.RETRY_DELAY_SOURCE]: source,
      [ATTR.ERROR_TYPE]: errorType,
    });
    guard("retry metric", () => getInstruments().retries.add(1, { ...this.metricAttributes(model), [ATTR.ERROR_TYPE]: errorType }));
    guard("retry log", () =>
      log().warn(
        { ...this.logContext(), attempt: failedAttempt, delay_ms: Math.round(delayMs), delay_source: source, "error.type": errorType },
        "llm call retrying",
      ),
    );
  }

  giveUp(reason: string, errorType: string): void {
    this.event(EVENT.GIVE_UP, { [ATTR.GIVE_UP_REASON]: reason, [ATTR.ERROR_TYPE]: errorType });
    guard("give_up log", () =>
      log().warn({ ...this.logContext(), reason, "error.type": errorType, attempts: this.attemptCount }, "llm call gave up"),
    );
  }

  fallback(from: string | undefined, to: string, reason: string): void {
    this.event(EVENT.FALLBACK, { [ATTR.FALLBACK_FROM]: from ?? "", [ATTR.FALLBACK_TO]: to, [ATTR.FALLBACK_REASON]: reason });
    guard("fallback metric", () =>
      getInstruments().fallbacks.add(1, {
        ...this.metricAttributes(from),
        [ATTR.FALLBACK_TO]: to,
        [ATTR.FALLBACK_REASON]: reason,
      }),
    );
    guard("fallback log", () => log().warn({ ...this.logContext(), from, to, reason }, "llm call falling back"));
  }

  /** Marks the first chunk that reached the caller. */
  firstChunk(): void {
    if (this.firstChunkAt !== undefined) return;
    this.firstChunkAt = performance.now();
    const seconds = (this.firstChunkAt - this.start) / 1000;
    guard("ttfc", () => {
      this.span.setAttribute(ATTR.RESPONSE_TTFC, seconds);
      getInstruments().ttfc.record(seconds, this.metricAttributes(this.current?.model));
    });
  }

  get streamStarted(): boolean {
    return this.firstChunkAt !== undefined;
  }

  /** Prices the response: its cost goes on its attempt's attributes, into the call's total and the cost metric. */
  private priceResponse(info: ResponseInfo, attempt: Attempt | undefined, attributes: Attributes | undefined): void {
    const pricing = this.id.pricing;
    if (!pricing || !info.usage) return;
    guard("cost", () => {
      const c = pricing.cost(info.usage!, info.model, attempt?.model ?? this.requestModel);
      if (!c) return;
      const usd = c.inputUsd + c.outputUsd;
      this.costUsd = (this.costUsd ?? 0) + usd;
      if (attributes) attributes[ATTR.COST_USD] = usd;
      const labels = costLabels(this.labels(), info.model);
      const m = getInstruments();
      if (c.inputUsd > 0) m.cost.add(c.inputUsd, labels.input);
      if (c.outputUsd > 0) m.cost.add(c.outputUsd, labels.output);
    });
  }

  /** The call's total cost on its span; the pricing hears it (the spend limit settles with it). */
  private endCost(): void {
    if (this.costUsd !== undefined) guard("cost", () => this.span.setAttribute(ATTR.COST_USD, this.costUsd!));
    const pricing = this.id.pricing;
    if (pricing) guard("cost", () => pricing.ended(this.costUsd ?? 0));
  }

  /** The spend limit refused the call before it sent anything. */
  spendRejected(limitUsd: number, spentUsd: number, reservedUsd: number, estimateUsd: number, model: string | undefined): void {
    this.event(EVENT.SPEND_REJECT, {
      [ATTR.SPEND_LIMIT_USD]: limitUsd,
      [ATTR.SPEND_SPENT_USD]: spentUsd,
      [ATTR.SPEND_ESTIMATE_USD]: estimateUsd,
      [ATTR.SPEND_RESERVED_USD]: reservedUsd,
    });
    guard("spend rejection metric", () => getInstruments().spendRejections.add(1, this.metricAttributes(model)));
    guard("spend rejection log", () =>
      log().warn(
        { ...this.logContext(), limit_usd: limitUsd, spent_usd: spentUsd, reserved_usd: reservedUsd, estimate_usd: estimateUsd },
        "llm call refused by the spend limit",
      ),
    );
  }

  /** `at`: when the call ended, if not now (a performance.now() time). */
  succeed(info: ResponseInfo, at?: number): void {
    if (this.ended) return;
    this.ended = true;
    const attempt = this.current;
    const attributes = guard("response attributes", () => responseAttributes(info));
    this.priceResponse(info, attempt, attributes);
    if (attempt) this.endAttempt(attempt, undefined, attributes, at);
    guard("succeed", () => {
      if (attributes) this.span.setAttributes(attributes);
      this.span.setAttribute(ATTR.ATTEMPTS, this.attemptCount);
      if (this.id.captureContent && info.output !== undefined) {
        this.span.setAttribute(ATTR.OUTPUT_MESSAGES, JSON.stringify(info.output));
      }
      this.recordEnd(info, undefined, at);
    });
    this.endCost();
    if (!this.adopted) endSpan(this.span, at);
  }

  fail(errorType: string, err?: unknown, info: ResponseInfo = {}): void {
    if (this.ended) return;
    this.ended = true;
    const attempt = this.current;
    const attributes = guard("response attributes", () => responseAttributes(info));
    this.priceResponse(info, attempt, attributes);
    if (attempt) this.endAttempt(attempt, errorType, attributes);
    guard("fail", () => {
      if (attributes) this.span.setAttributes(attributes);
      this.span.setAttribute(ATTR.ATTEMPTS, this.attemptCount);
      this.span.setAttribute(ATTR.ERROR_TYPE, errorType);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? this.redact(err.message).slice(0, 300) : undefined });
      this.recordEnd(info, errorType);
    });
    this.endCost();
    if (!this.adopted) endSpan(this.span);
  }

  private recordEnd(info: ResponseInfo, errorType: string | undefined, at = performance.now()): void {
    const seconds = (at - this.start) / 1000;
    const labels = this.labels();
    const m = getInstruments();
    m.duration.record(seconds, errorType === undefined ? labels.base : withErrorType(labels.base, errorType));
    const u = info.usage;
    if (u?.input !== undefined) m.tokens.record(u.input, labels.inputTokens);
    if (u?.output !== undefined) m.tokens.record(u.output, labels.outputTokens);
    // The summary of a call: debug when it succeeded (its decisions, if any, were logged as they
    // happened), info when it failed.
    const level = errorType === undefined ? "debug" : "info";
    if (!logLevelEnabled(level)) return;
    const logger = log();
    const sc = this.span.spanContext();
    // One literal (no spread): this line is on the hot path of every call at debug level.
    logger[level](
      {
        provider: this.id.provider,
        operation: this.id.op.name,
        model: this.requestModel,
        trace_id: sc.traceId,
        span_id: sc.spanId,
        "tokens.input": u?.input,
        "tokens.output": u?.output,
        cost_usd: this.costUsd,
        latency_ms: Math.round(seconds * 1000),
        attempts: this.attemptCount,
        retries: this.retryCount,
        finish_reason: info.finishReasons?.join(","),
        "error.type": errorType,
      },
      errorType === undefined ? "llm call" : "llm call failed",
    );
  }

  private logContext(): Record<string, unknown> {
    const sc = this.span.spanContext();
    return {
      provider: this.id.provider,
      operation: this.id.op.name,
      model: this.requestModel,
      trace_id: sc.traceId,
      span_id: sc.spanId,
    };
  }

  /** Runs fn(arg) with the attempt's context active, so HTTP instrumentation nests under it. */
  within<A, T>(attempt: Attempt, fn: (arg: A) => T, arg: A): T {
    return context.with(attempt.ctx, fn, undefined, arg);
  }
}
