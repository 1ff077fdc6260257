const NULLABLE_HEADERS = Symbol.for("brand.privateNullableHeaders");
const RETRY_COUNT = "X-Stainless-Retry-Count";

/**
 * Request options' headers with the retry index set, in whatever form the SDK passed them: a plain
 * record (openai 4.x, anthropic 0.30), a `Headers`, an array of pairs, or the branded NullableHeaders
 * that the rewritten @anthropic-ai/sdk builds (with BaseAnthropic: 0.137, 1.x checked) pass from
 * messages.create (a plain key spread onto that object is ignored).
 */
export function withRetryCount(h: any, value: string): any {
  const name = RETRY_COUNT;
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
