import type { Attributes } from "@opentelemetry/api";

/** Small readers shared by the provider adapters; tolerant of any shape. */

export function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

export function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

export function strList(v: unknown): string[] | undefined {
  if (typeof v === "string") return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  return undefined;
}

/**
 * Sets `key` only when `value` is present. One call per attribute: an object literal of computed keys
 * (`{ [ATTR.X]: ... }`) costs a runtime call per key in V8, on every SDK call.
 */
export function put(target: Attributes, key: string, value: Attributes[string]): void {
  if (value !== undefined && value !== null) target[key] = value;
}

export function sum(...values: (number | undefined)[]): number | undefined {
  let total: number | undefined;
  for (const v of values) if (v !== undefined) total = (total ?? 0) + v;
  return total;
}
