import { BUNDLED_PRICES, type ModelLimits, type PriceEntry, TOKENS_PER_PRICE_UNIT } from "./price-table.js";

/** Token counts as the GenAI conventions report them: `input` includes cache reads and writes, `output` includes reasoning. */
export interface TokenUsage {
  readonly input?: number;
  readonly output?: number;
  readonly cacheRead?: number;
  readonly cacheCreation?: number;
  readonly reasoning?: number;
}

/** One model's entry of LLM_RESILIENCE_PRICES / the `prices` option; given fields replace the bundled ones. */
interface PriceOverride {
  input?: number;
  output?: number;
  cacheRead?: number;
  cacheWrite?: number;
  contextWindow?: number;
  maxOutputTokens?: number;
}

export type PriceOverrides = Readonly<Record<string, PriceOverride>>;

const OVERRIDE_FIELDS = new Set(["input", "output", "cacheRead", "cacheWrite", "contextWindow", "maxOutputTokens"]);

/** Why `value` is not a valid price override map, or undefined when it is. */
export function priceOverridesProblem(value: unknown, bundled: Readonly<Record<string, PriceEntry>> = BUNDLED_PRICES): string | undefined {
  if (!value || typeof value !== "object" || Array.isArray(value)) return "not an object";
  for (const [model, entry] of Object.entries(value)) {
    if (model === "") return "an empty model name";
    if (!entry || typeof entry !== "object" || Array.isArray(entry)) return `${model}: not an object`;
    for (const [field, v] of Object.entries(entry)) {
      if (!OVERRIDE_FIELDS.has(field)) return `${model}.${field}: unknown field`;
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0) return `${model}.${field}: not a number >= 0`;
    }
    const e = entry as PriceOverride;
    if (!(model in bundled) && (e.input === undefined || e.output === undefined))
      return `${model}: a model not in the bundled table needs input and output`;
  }
  return undefined;
}

/** The id without its date: `gpt-4o-2024-08-06` → `gpt-4o`, `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`. */
export function undatedBase(model: string): string | undefined {
  const base = model.replace(DATE_SUFFIX, "");
  return base !== model && base !== "" ? base : undefined;
}
// -2024-08-06 (OpenAI), -20250929 (Anthropic), @20250929 (Vertex), -0613 (older OpenAI snapshots).
const DATE_SUFFIX = /(?:-\d{4}-\d{2}-\d{2}|[-@]\d{8}|-\d{4})$/;

const MAX_CACHED_NAMES = 1000;

/**
 * Prices and limits by model: the bundled table with the user's overrides merged over it. Lookups
 * are two map reads plus a cached undated name, so they can run on every call.
 */
export class PriceBook {
  private readonly table: Map<string, PriceEntry>;
  private readonly bases = new Map<string, string | null>();

  constructor(overrides: PriceOverrides = {}, bundled: Readonly<Record<string, PriceEntry>> = BUNDLED_PRICES) {
    this.table = new Map(Object.entries(bundled));
    for (const [model, o] of Object.entries(overrides)) {
      const prev = this.table.get(model);
      // An overridden base rate no longer implies the bundled cache rates or long-context tier.
      const merged = { ...prev, ...o } as PriceEntry & { longContext?: unknown };
      if (o.input !== undefined || o.output !== undefined) delete merged.longContext;
      this.table.set(model, merged);
    }
  }

  /**
   * The price of a call: the response model's, else the request model's, else that of either's
   * undated base name. Undefined when none is priced.
   */
  priceOf(responseModel: string | undefined, requestModel?: string): PriceEntry | undefined {
    const t = this.table;
    return (
      (responseModel !== undefined ? t.get(responseModel) : undefined) ??
      (requestModel !== undefined ? t.get(requestModel) : undefined) ??
      this.byBase(responseModel) ??
      this.byBase(requestModel)
    );
  }

  /** Context window and output limit of a model (exact name, then undated base). */
  limitsOf(model: string | undefined): ModelLimits | undefined {
    return this.priceOf(undefined, model);
  }

  private byBase(model: string | undefined): PriceEntry | undefined {
    if (model === undefined) return undefined;
    let base = this.bases.get(model);
    if (base === undefined) {
      if (this.bases.size >= MAX_CACHED_NAMES) this.bases.clear();
      base = undatedBase(model) ?? null;
      this.bases.set(model, base);
    }
    return base === null ? undefined : this.table.get(base);
  }
}

/** USD of one response, input side (uncached, cache reads, cache writes) and output side (reasoning included). */
export interface CostParts {
  readonly inputUsd: number;
  readonly outputUsd: number;
}

/**
 * What one response's usage cost: uncached input at the input rate, cache reads and writes at
 * theirs, output (reasoning included) at the output rate. Undefined when the usage says nothing.
 */
export function costParts(price: PriceEntry, usage: TokenUsage | undefined): CostParts | undefined {
  if (!usage || (usage.input === undefined && usage.output === undefined && usage.reasoning === undefined)) return undefined;
  const input = usage.input ?? 0;
  const cacheRead = usage.cacheRead ?? 0;
  const cacheWrite = usage.cacheCreation ?? 0;
  const output = usage.output ?? usage.reasoning ?? 0;
  const r = price.longContext && input > price.longContext.aboveInputTokens ? price.longContext : price;
  const uncached = Math.max(0, input - cacheRead - cacheWrite);
  return {
    inputUsd: (uncached * r.input + cacheRead * (r.cacheRead ?? r.input) + cacheWrite * (r.cacheWrite ?? r.input)) / TOKENS_PER_PRICE_UNIT,
    outputUsd: (output * r.output) / TOKENS_PER_PRICE_UNIT,
  };
}

/** USD of one response's usage (see costParts). */
export function costOf(price: PriceEntry, usage: TokenUsage | undefined): number | undefined {
  const c = costParts(price, usage);
  return c && c.inputUsd + c.outputUsd;
}

/** The most a request can cost: every input token at the dearer of the input and cache-write rates, every output token. */
export function worstCaseCost(price: PriceEntry, inputTokens: number, outputTokens: number): number {
  const r = price.longContext && inputTokens > price.longContext.aboveInputTokens ? price.longContext : price;
  return (inputTokens * Math.max(r.input, r.cacheWrite ?? 0) + outputTokens * r.output) / TOKENS_PER_PRICE_UNIT;
}
