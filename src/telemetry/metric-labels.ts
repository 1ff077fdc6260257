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
