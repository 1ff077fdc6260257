import type { Attributes } from "@opentelemetry/api";
import { ATTR } from "./semconv.js";

/** The label sets a call records its metrics with; frozen, as the metrics SDK keeps a reference. */
export interface MetricLabels {
  readonly base: Attributes;
  readonly inputTokens: Attributes;
  readonly outputTokens: Attributes;
}

const MAX_CACHED = 512;
const cache = new Map<string, MetricLabels>();

/**
 * Built once per (operation, provider, model, server) and shared by every call with that identity:
 * a call records up to four metric points, none of which allocates a label object.
 */
export function metricLabels(operation: string, provider: string, model: string | undefined, server: string | undefined): MetricLabels {
  // \u0001 stands for "absent", so an empty model or server never shares a key with a missing one.
  const key = `${operation}\u0000${provider}\u0000${model ?? "\u0001"}\u0000${server ?? "\u0001"}`;
  let labels = cache.get(key);
  if (labels) return labels;
  const base: Attributes = { [ATTR.OPERATION]: operation, [ATTR.PROVIDER]: provider };
  if (model !== undefined) base[ATTR.REQUEST_MODEL] = model;
  if (server !== undefined) base[ATTR.SERVER_ADDRESS] = server;
  labels = {
    base: Object.freeze(base),
    inputTokens: Object.freeze({ ...base, [ATTR.TOKEN_TYPE]: "input" }),
    outputTokens: Object.freeze({ ...base, [ATTR.TOKEN_TYPE]: "output" }),
  };
  // Model names come from callers: past a bound, build per call rather than grow without limit.
  if (cache.size < MAX_CACHED) cache.set(key, labels);
  return labels;
}

export interface CostLabels {
  readonly input: Attributes;
  readonly output: Attributes;
}
const costCache = new WeakMap<MetricLabels, Map<string, CostLabels>>();

/** `llm_resilience.cost` labels: the token metric's plus the model that answered; built once per pair. */
export function costLabels(labels: MetricLabels, responseModel: string | undefined): CostLabels {
  let byModel = costCache.get(labels);
  if (!byModel) {
    byModel = new Map();
    costCache.set(labels, byModel);
  }
  const key = responseModel ?? "\u0001";
  let out = byModel.get(key);
  if (out) return out;
  const base = responseModel === undefined ? labels.base : { ...labels.base, [ATTR.RESPONSE_MODEL]: responseModel };
  out = {
    input: Object.freeze({ ...base, [ATTR.TOKEN_TYPE]: "input" }),
    output: Object.freeze({ ...base, [ATTR.TOKEN_TYPE]: "output" }),
  };
  if (byModel.size < MAX_CACHED) byModel.set(key, out);
  return out;
}

const errorCache = new WeakMap<Attributes, Map<string, Attributes>>();

/** A shared label set plus `error.type`, built once per pair (a failure storm records many). */
export function withErrorType(labels: Attributes, errorType: string): Attributes {
  let byType = errorCache.get(labels);
  if (!byType) {
    byType = new Map();
    errorCache.set(labels, byType);
  }
  let out = byType.get(errorType);
  if (out) return out;
  out = Object.freeze({ ...labels, [ATTR.ERROR_TYPE]: errorType });
  if (byType.size < MAX_CACHED) byType.set(errorType, out);
  return out;
}
