import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { costOf, PriceBook, priceOverridesProblem, undatedBase, worstCaseCost } from "../src/pricing/price-book.ts";
import { BUNDLED_PRICES, PRICE_TABLE_AS_OF, PRICE_TABLE_SOURCES } from "../src/pricing/price-table.ts";

const close = (a: number | undefined, b: number) => assert.ok(a !== undefined && Math.abs(a - b) < 1e-12, `${a} ≉ ${b}`);

describe("the bundled table", () => {
  test("has its date and its sources", () => {
    assert.match(PRICE_TABLE_AS_OF, /^\d{4}-\d{2}-\d{2}$/);
    assert.ok(PRICE_TABLE_SOURCES.some((u) => u.startsWith("https://platform.openai.com/")));
    assert.ok(PRICE_TABLE_SOURCES.some((u) => u.startsWith("https://docs.claude.com/")));
  });

  test("every entry is a sane price: output >= input except embeddings, cache reads cheaper than input", () => {
    for (const [model, p] of Object.entries(BUNDLED_PRICES)) {
      assert.ok(p.input > 0, model);
      if (!model.startsWith("text-embedding")) assert.ok(p.output >= p.input, model);
      if (p.cacheRead !== undefined) assert.ok(p.cacheRead < p.input, model);
      if (p.maxOutputTokens !== undefined && p.contextWindow !== undefined) assert.ok(p.maxOutputTokens <= p.contextWindow, model);
    }
  });

  test("the models the README promises are priced", () => {
    const book = new PriceBook();
    for (const m of [
      "gpt-4o",
      "gpt-4o-mini",
      "gpt-4.1",
      "gpt-4.1-mini",
      "gpt-4.1-nano",
      "o1",
      "o3",
      "o3-mini",
      "o4-mini",
      "gpt-5",
      "gpt-5-mini",
      "gpt-5-nano",
      "claude-opus-4-5",
      "claude-opus-4-1",
      "claude-sonnet-4-5",
      "claude-sonnet-4",
      "claude-haiku-4-5",
      "claude-3-7-sonnet",
      "claude-3-5-sonnet",
      "claude-3-5-haiku",
    ]) {
      assert.ok(book.priceOf(m), m);
    }
  });
});

describe("lookup", () => {
  test("undated base names", () => {
    assert.equal(undatedBase("gpt-4o-2024-08-06"), "gpt-4o");
    assert.equal(undatedBase("claude-sonnet-4-5-20250929"), "claude-sonnet-4-5");
    assert.equal(undatedBase("claude-sonnet-4-5@20250929"), "claude-sonnet-4-5");
    assert.equal(undatedBase("gpt-3.5-turbo-0125"), "gpt-3.5-turbo");
    assert.equal(undatedBase("gpt-4o"), undefined);
    assert.equal(undatedBase("claude-opus-4-0"), undefined);
  });

  test("response model first, then request model, then their undated bases", () => {
    const book = new PriceBook({ "gpt-4o-2024-08-06": { input: 1, output: 2 }, "prod-deployment": { input: 7, output: 8 } });
    assert.equal(book.priceOf("gpt-4o-2024-08-06", "gpt-4o")!.input, 1, "the exact response model wins");
    assert.equal(book.priceOf("gpt-4o-2024-11-20", "prod-deployment")!.input, 7, "the request model before a base name");
    assert.equal(book.priceOf("gpt-4o-2024-11-20", "unknown")!.input, 2.5, "the response model's base name");
    assert.equal(book.priceOf(undefined, "claude-sonnet-4-5-20250929")!.input, 3, "the request model's base name");
    assert.equal(book.priceOf("gpt-4o-2024-05-13")!.input, 5, "a dated entry of its own beats the base");
    assert.equal(book.priceOf("my-model", "other"), undefined);
    assert.equal(book.priceOf(undefined, undefined), undefined);
  });

  test("limits come with the price", () => {
    const book = new PriceBook();
    assert.equal(book.limitsOf("claude-3-5-haiku-20241022")!.maxOutputTokens, 8_192);
    assert.equal(book.limitsOf("gpt-4o-mini-2024-07-18")!.contextWindow, 128_000);
    assert.equal(book.limitsOf("nope"), undefined);
  });

  test("overrides merge field by field; a new base rate drops the bundled long-context tier", () => {
    const book = new PriceBook({ "claude-sonnet-4-5": { input: 2, output: 10 }, "gpt-4o": { cacheRead: 1 } });
    const s = book.priceOf("claude-sonnet-4-5")!;
    assert.equal(s.input, 2);
    assert.equal(s.cacheRead, 0.3, "the bundled cache rate stays");
    assert.equal(s.contextWindow, 1_000_000, "the bundled limits stay");
    assert.equal(s.longContext, undefined);
    assert.deepEqual([book.priceOf("gpt-4o")!.input, book.priceOf("gpt-4o")!.cacheRead], [2.5, 1]);
    assert.ok(new PriceBook().priceOf("claude-sonnet-4-5")!.longContext, "the bundled table itself is untouched");
  });

  test("override validation names the problem", () => {
    assert.equal(priceOverridesProblem({ "gpt-4o": { input: 1 } }), undefined);
    assert.equal(priceOverridesProblem({ mine: { input: 1, output: 2, cacheRead: 0.1, cacheWrite: 1.25 } }), undefined);
    assert.match(priceOverridesProblem({ mine: { input: 1 } })!, /mine: a model not in the bundled table needs input and output/);
    assert.match(priceOverridesProblem({ "gpt-4o": { input: -1 } })!, /gpt-4o\.input: not a number >= 0/);
    assert.match(priceOverridesProblem({ "gpt-4o": { inptu: 1 } })!, /gpt-4o\.inptu: unknown field/);
    assert.match(priceOverridesProblem({ "gpt-4o": "cheap" })!, /gpt-4o: not an object/);
    assert.match(priceOverridesProblem([])!, /not an object/);
  });
});

describe("cost", () => {
  const book = new PriceBook();
  test("OpenAI: cached input at the cached rate, reasoning inside output", () => {
    // gpt-4o-mini: 0.15 in, 0.075 cached, 0.60 out. 1000 prompt tokens of which 400 cached; 500 completion of which 300 reasoning.
    const c = costOf(book.priceOf("gpt-4o-mini")!, { input: 1000, cacheRead: 400, output: 500, reasoning: 300 });
    close(c, (600 * 0.15 + 400 * 0.075 + 500 * 0.6) / 1e6);
  });

  test("Anthropic: input includes cache reads and writes (the convention's rule); each at its rate", () => {
    // claude-sonnet-4-5: 3 in, 0.30 read, 3.75 write, 15 out; raw input 100 + 2000 read + 500 written.
    const c = costOf(book.priceOf("claude-sonnet-4-5-20250929")!, { input: 2600, cacheRead: 2000, cacheCreation: 500, output: 80 });
    close(c, (100 * 3 + 2000 * 0.3 + 500 * 3.75 + 80 * 15) / 1e6);
  });

  test("Sonnet above 200K input tokens is priced at the long-context rates", () => {
    const c = costOf(book.priceOf("claude-sonnet-4-5")!, { input: 250_000, output: 1000 });
    close(c, (250_000 * 6 + 1000 * 22.5) / 1e6);
  });

  test("missing cache rates fall back to the input rate; reasoning alone counts as output", () => {
    const p = { input: 2, output: 4 };
    close(costOf(p, { input: 10, cacheRead: 4, cacheCreation: 2, output: 1 }), (10 * 2 + 1 * 4) / 1e6);
    close(costOf(p, { reasoning: 5 }), (5 * 4) / 1e6);
    assert.equal(costOf(p, {}), undefined);
    assert.equal(costOf(p, undefined), undefined);
  });

  test("worst case: every input token at the dearer of input and cache write, every output token", () => {
    close(worstCaseCost(book.priceOf("claude-haiku-4-5")!, 1000, 100), (1000 * 1.25 + 100 * 5) / 1e6);
    close(worstCaseCost(book.priceOf("gpt-4o")!, 1000, 100), (1000 * 2.5 + 100 * 10) / 1e6);
  });
});
