import { type Attributes, type Counter, type Histogram, metrics } from "@opentelemetry/api";
import { SCOPE, VERSION } from "../version.js";
import { DURATION_BUCKETS_S, METRIC, TOKEN_BUCKETS } from "./semconv.js";

export interface Instruments {
  duration: Histogram;
  tokens: Histogram;
  ttfc: Histogram;
  attempts: Counter;
  retries: Counter;
  breakerTransitions: Counter;
  breakerRejections: Counter;
  fallbacks: Counter;
  cost: Counter;
  spendRejections: Counter;
}

/** Breaker states as the gauge reports them; one entry per key, read at collection time. */
export const breakerGauge = new Map<string, { value: number; attributes: Attributes }>();
export const BREAKER_STATE_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

let instruments: Instruments | undefined;

/** Label sets a summed counter holds between collections before it hands them on early (a bound on memory). */
const MAX_PENDING = 256;

/**
 * A Counter whose adds are summed here per label set (by identity: callers pass the shared, frozen label
 * objects of metric-labels.ts) and handed to the SDK's counter at collection, from an observable callback,
 * which the metrics SDK runs before it reads its synchronous instruments. The exported sums are the same,
 * the instrument stays a Counter; a call pays a map update instead of the SDK's attribute hashing per add.
 */
class SummedCounter implements Counter {
  private readonly pending = new Map<Attributes, number>();

  constructor(private readonly counter: Counter) {}

  add(value: number, attributes: Attributes = NO_ATTRIBUTES): void {
    const pending = this.pending;
    pending.set(attributes, (pending.get(attributes) ?? 0) + value);
    if (pending.size > MAX_PENDING) this.flush();
  }

  flush(): void {
    for (const [attributes, sum] of this.pending) this.counter.add(sum, attributes);
    this.pending.clear();
  }
}

const NO_ATTRIBUTES: Attributes = Object.freeze({});

/** 1 while the fleet-wide store (Redis) is unusable and policies decide locally; unset without one. */
let storeDegraded: number | undefined;
export function setStoreDegraded(degraded: boolean): void {
  storeDegraded = degraded ? 1 : 0;
}

/**
 * Created on first use, after the meter provider is settled: the metrics API has no proxy, so
 * instruments made from the no-op provider would stay no-op forever.
 */
export function getInstruments(): Instruments {
  if (instruments) return instruments;
  const meter = metrics.getMeter(SCOPE, VERSION);
  // Recorded on every call: summed here between collections (see SummedCounter).
  const attempts = new SummedCounter(meter.createCounter(METRIC.ATTEMPTS, { description: "HTTP attempts made for GenAI calls." }));
  const cost = new SummedCounter(
    meter.createCounter(METRIC.COST, { unit: "{USD}", description: "Cost of GenAI calls by the price table, by token type." }),
  );
  instruments = {
    duration: meter.createHistogram(METRIC.OPERATION_DURATION, {
      unit: "s",
      description: "GenAI operation duration.",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    }),
    tokens: meter.createHistogram(METRIC.TOKEN_USAGE, {
      unit: "{token}",
      description: "Number of input and output tokens used.",
      advice: { explicitBucketBoundaries: TOKEN_BUCKETS },
    }),
    ttfc: meter.createHistogram(METRIC.TIME_TO_FIRST_CHUNK, {
      unit: "s",
      description: "Time to receive the first chunk of a streamed response.",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    }),
    attempts,
    retries: meter.createCounter(METRIC.RETRIES, { description: "Retries decided by llm-resilience." }),
    breakerTransitions: meter.createCounter(METRIC.BREAKER_TRANSITIONS, { description: "Circuit breaker state changes." }),
    breakerRejections: meter.createCounter(METRIC.BREAKER_REJECTIONS, { description: "Calls rejected by an open breaker." }),
    fallbacks: meter.createCounter(METRIC.FALLBACKS, { description: "Calls moved to a fallback model." }),
    cost,
    spendRejections: meter.createCounter(METRIC.SPEND_REJECTIONS, { description: "Calls refused by the spend limit before sending." }),
  };
  const state = meter.createObservableGauge(METRIC.BREAKER_STATE, {
    description: "Circuit breaker state: 0 closed, 1 half_open, 2 open.",
  });
  state.addCallback((result) => {
    for (const { value, attributes } of breakerGauge.values()) result.observe(value, attributes);
  });
  state.addCallback(() => {
    attempts.flush();
    cost.flush();
  });
  const degraded = meter.createObservableGauge(METRIC.STORE_DEGRADED, {
    description: "1 while the fleet-wide state store (Redis) is unreachable and policies decide locally, else 0.",
  });
  degraded.addCallback((result) => {
    if (storeDegraded !== undefined) result.observe(storeDegraded);
  });
  return instruments;
}

/** For tests that swap meter providers. */
export function resetInstruments(): void {
  instruments = undefined;
}
