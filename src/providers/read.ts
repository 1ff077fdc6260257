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

/** Sets only the values that are present. */
export function putAll(target: Attributes, entries: Record<string, unknown>): Attributes {
  for (const key in entries) {
    const v = entries[key];
    if (v !== undefined && v !== null) target[key] = v as Attributes[string];
  }
  return target;
}

export function sum(...values: (number | undefined)[]): number | undefined {
  let total: number | undefined;
  for (const v of values) if (v !== undefined) total = (total ?? 0) + v;
  return total;
}
