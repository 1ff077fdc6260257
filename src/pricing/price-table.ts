/**
 * The bundled price table: USD per million tokens, and the limits a request is checked against.
 * Users override or extend it with LLM_RESILIENCE_PRICES / the `prices` option (price-book.ts).
 */

export const PRICE_TABLE_AS_OF = "2026-12-06";
export const PRICE_TABLE_SOURCES: readonly string[] = [
  "https://platform.openai.com/docs/pricing",
  "https://platform.openai.com/docs/models",
  "https://docs.claude.com/en/docs/about-claude/pricing",
  "https://docs.claude.com/en/docs/about-claude/models/overview",
];

/** USD per million tokens. `cacheRead` / `cacheWrite` default to `input` when absent. */
interface ModelPrice {
  readonly input: number;
  readonly output: number;
  /** OpenAI cached input, Anthropic cache hits. */
  readonly cacheRead?: number;
  /** Anthropic cache writes (the 5-minute rate; OpenAI does not charge for writing its cache). */
  readonly cacheWrite?: number;
}

export interface ModelLimits {
  /** The largest input the model accepts with any beta header (tokens). */
  readonly contextWindow?: number;
  /** The largest `max_tokens` the model accepts with any beta header. */
  readonly maxOutputTokens?: number;
}

/** Rates that replace the base ones for a request whose input is above `aboveInputTokens`. */
interface LongContextPrice extends ModelPrice {
  readonly aboveInputTokens: number;
}

export interface PriceEntry extends ModelPrice, ModelLimits {
  readonly longContext?: LongContextPrice;
}

const M = 1_000_000;

// Anthropic: the 5-minute cache write is 1.25 × input, a cache hit 0.1 × input.
const anthropic = (input: number, output: number, limits: ModelLimits, longContext?: LongContextPrice): PriceEntry => ({
  input,
  output,
  cacheRead: round(input * 0.1),
  cacheWrite: round(input * 1.25),
  ...limits,
  ...(longContext && { longContext }),
});
// Sonnet 4 / 4.5 with the 1M-context beta: above 200K input tokens, input ×2 and output ×1.5.
const SONNET_LONG: LongContextPrice = { aboveInputTokens: 200_000, input: 6, output: 22.5, cacheRead: 0.6, cacheWrite: 7.5 };

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

/** Keys are model ids without a date suffix; a dated id falls back to its undated base (price-book.ts). */
export const BUNDLED_PRICES: Readonly<Record<string, PriceEntry>> = {
  // OpenAI: GPT-5 family
  "gpt-5": { input: 1.25, cacheRead: 0.125, output: 10, contextWindow: 400_000, maxOutputTokens: 128_000 },
  "gpt-5.1": { input: 1.25, cacheRead: 0.125, output: 10, contextWindow: 400_000, maxOutputTokens: 128_000 },
  "gpt-5-mini": { input: 0.25, cacheRead: 0.025, output: 2, contextWindow: 400_000, maxOutputTokens: 128_000 },
  "gpt-5-nano": { input: 0.05, cacheRead: 0.005, output: 0.4, contextWindow: 400_000, maxOutputTokens: 128_000 },
  "gpt-5-chat-latest": { input: 1.25, cacheRead: 0.125, output: 10, contextWindow: 128_000, maxOutputTokens: 16_384 },
  "gpt-5-pro": { input: 15, output: 120, contextWindow: 400_000 },
  // OpenAI: GPT-4.1 family
  "gpt-4.1": { input: 2, cacheRead: 0.5, output: 8, contextWindow: 1_047_576, maxOutputTokens: 32_768 },
  "gpt-4.1-mini": { input: 0.4, cacheRead: 0.1, output: 1.6, contextWindow: 1_047_576, maxOutputTokens: 32_768 },
  "gpt-4.1-nano": { input: 0.1, cacheRead: 0.025, output: 0.4, contextWindow: 1_047_576, maxOutputTokens: 32_768 },
  // OpenAI: GPT-4o family
  "gpt-4o": { input: 2.5, cacheRead: 1.25, output: 10, contextWindow: 128_000, maxOutputTokens: 16_384 },
  "gpt-4o-2024-05-13": { input: 5, output: 15, contextWindow: 128_000, maxOutputTokens: 4_096 },
  "chatgpt-4o-latest": { input: 5, output: 15, contextWindow: 128_000, maxOutputTokens: 16_384 },
  "gpt-4o-mini": { input: 0.15, cacheRead: 0.075, output: 0.6, contextWindow: 128_000, maxOutputTokens: 16_384 },
  // OpenAI: o-series (reasoning tokens are part of the output tokens, billed as output)
  o1: { input: 15, cacheRead: 7.5, output: 60, contextWindow: 200_000, maxOutputTokens: 100_000 },
  "o1-mini": { input: 1.1, cacheRead: 0.55, output: 4.4, contextWindow: 128_000, maxOutputTokens: 65_536 },
  "o1-pro": { input: 150, output: 600, contextWindow: 200_000, maxOutputTokens: 100_000 },
  o3: { input: 2, cacheRead: 0.5, output: 8, contextWindow: 200_000, maxOutputTokens: 100_000 },
  "o3-pro": { input: 20, output: 80, contextWindow: 200_000, maxOutputTokens: 100_000 },
  "o3-mini": { input: 1.1, cacheRead: 0.55, output: 4.4, contextWindow: 200_000, maxOutputTokens: 100_000 },
  "o4-mini": { input: 1.1, cacheRead: 0.275, output: 4.4, contextWindow: 200_000, maxOutputTokens: 100_000 },
  // OpenAI: older chat models
  "gpt-4-turbo": { input: 10, output: 30, contextWindow: 128_000, maxOutputTokens: 4_096 },
  "gpt-4": { input: 30, output: 60, contextWindow: 8_192, maxOutputTokens: 8_192 },
  "gpt-3.5-turbo": { input: 0.5, output: 1.5, contextWindow: 16_385, maxOutputTokens: 4_096 },
  // OpenAI: embeddings (input only)
  "text-embedding-3-small": { input: 0.02, output: 0, contextWindow: 8_192 },
  "text-embedding-3-large": { input: 0.13, output: 0, contextWindow: 8_192 },
  "text-embedding-ada-002": { input: 0.1, output: 0, contextWindow: 8_192 },

  // Anthropic: Claude 4.x (context windows and output limits are the largest any beta header allows)
  "claude-opus-4-6": anthropic(5, 25, { contextWindow: 1_000_000, maxOutputTokens: 128_000 }),
  "claude-opus-4-5": anthropic(5, 25, { contextWindow: 200_000, maxOutputTokens: 64_000 }),
  "claude-opus-4-1": anthropic(15, 75, { contextWindow: 200_000, maxOutputTokens: 32_000 }),
  "claude-opus-4": anthropic(15, 75, { contextWindow: 200_000, maxOutputTokens: 32_000 }),
  "claude-opus-4-0": anthropic(15, 75, { contextWindow: 200_000, maxOutputTokens: 32_000 }),
  "claude-sonnet-4-6": anthropic(3, 15, { contextWindow: 1_000_000, maxOutputTokens: 64_000 }),
  "claude-sonnet-4-5": anthropic(3, 15, { contextWindow: 1_000_000, maxOutputTokens: 64_000 }, SONNET_LONG),
  "claude-sonnet-4": anthropic(3, 15, { contextWindow: 1_000_000, maxOutputTokens: 64_000 }, SONNET_LONG),
  "claude-sonnet-4-0": anthropic(3, 15, { contextWindow: 1_000_000, maxOutputTokens: 64_000 }, SONNET_LONG),
  "claude-haiku-4-5": anthropic(1, 5, { contextWindow: 200_000, maxOutputTokens: 64_000 }),
  // Anthropic: Claude 3.x
  "claude-3-7-sonnet": anthropic(3, 15, { contextWindow: 200_000, maxOutputTokens: 128_000 }),
  "claude-3-7-sonnet-latest": anthropic(3, 15, { contextWindow: 200_000, maxOutputTokens: 128_000 }),
  "claude-3-5-sonnet": anthropic(3, 15, { contextWindow: 200_000, maxOutputTokens: 8_192 }),
  "claude-3-5-sonnet-latest": anthropic(3, 15, { contextWindow: 200_000, maxOutputTokens: 8_192 }),
  "claude-3-5-haiku": anthropic(0.8, 4, { contextWindow: 200_000, maxOutputTokens: 8_192 }),
  "claude-3-5-haiku-latest": anthropic(0.8, 4, { contextWindow: 200_000, maxOutputTokens: 8_192 }),
  "claude-3-opus": anthropic(15, 75, { contextWindow: 200_000, maxOutputTokens: 4_096 }),
  "claude-3-haiku": { input: 0.25, cacheRead: 0.03, cacheWrite: 0.3, output: 1.25, contextWindow: 200_000, maxOutputTokens: 4_096 },
};

/** Tokens per unit of the table's prices. */
export const TOKENS_PER_PRICE_UNIT = M;
