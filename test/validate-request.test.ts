import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { PriceBook } from "../src/pricing/price-book.ts";
import { minInputTokens } from "../src/providers/request-size.ts";
import { checkRequest, modelProblems, overflowsContext } from "../src/providers/validate-request.ts";

const CHAT = { name: "chat", kind: "chat" } as const;
const RESPONSES = { name: "chat", kind: "responses" } as const;
const MESSAGES = { name: "chat", kind: "messages" } as const;
const COUNT = { name: "count_tokens", kind: "count_tokens" } as const;
const EMBED = { name: "embeddings", kind: "embeddings" } as const;
const book = new PriceBook();

const oa = (body: unknown) => checkRequest("openai", CHAT, body)!.problems;
const an = (body: unknown) => checkRequest("anthropic", MESSAGES, body)!.problems;
const user = { role: "user", content: "hi" };

describe("accepted as the APIs accept them", () => {
  test("OpenAI chat: every role, content parts, an assistant tool call with null content", () => {
    assert.deepEqual(
      oa({
        model: "gpt-4o",
        messages: [
          { role: "developer", content: "be brief" },
          { role: "system", content: [{ type: "text", text: "x" }] },
          {
            role: "user",
            content: [
              { type: "text", text: "look" },
              { type: "image_url", image_url: { url: "https://x/y.png" } },
            ],
          },
          { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] },
          { role: "tool", tool_call_id: "c1", content: "42" },
          { role: "assistant", tool_calls: [] },
          { role: "function", name: "f", content: null },
          { role: "user", content: "" },
        ],
      }),
      [],
    );
  });

  test("OpenAI responses: a string input, message items, other items unchecked", () => {
    assert.deepEqual(checkRequest("openai", RESPONSES, { model: "gpt-4o", input: "hello" })!.problems, []);
    assert.deepEqual(
      checkRequest("openai", RESPONSES, {
        input: [
          { role: "user", content: [{ type: "input_text", text: "x" }] },
          { type: "function_call_output", call_id: "c", output: "1" },
        ],
      })!.problems,
      [],
    );
  });

  test("Anthropic: system as a string or blocks, a last assistant turn (prefill), tool results", () => {
    assert.deepEqual(
      an({
        model: "claude-sonnet-4-5",
        max_tokens: 64_000,
        system: [{ type: "text", text: "be brief", cache_control: { type: "ephemeral" } }],
        messages: [
          user,
          { role: "assistant", content: [{ type: "tool_use", id: "t", name: "f", input: {} }] },
          { role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: "1" }] },
          { role: "assistant", content: "The answer is" },
        ],
      }),
      [],
    );
    assert.deepEqual(an({ max_tokens: 5, system: "s", messages: [user] }), []);
  });

  test("operations that are not generations are not checked", () => {
    assert.equal(checkRequest("anthropic", COUNT, { messages: [] }), undefined);
    assert.equal(checkRequest("openai", EMBED, { input: "x" }), undefined);
  });
});

describe("refused before sending", () => {
  test("empty or missing messages", () => {
    assert.deepEqual(oa({ model: "m", messages: [] }), ["messages: must not be empty"]);
    assert.deepEqual(oa({ model: "m" }), ["messages: required, an array of messages"]);
    assert.deepEqual(an({ max_tokens: 5, messages: [] }), ["messages: must not be empty"]);
    assert.deepEqual(an({ max_tokens: 5, messages: "hi" }), ['messages: must be an array of messages, got "hi"']);
  });

  test("an unknown role", () => {
    assert.deepEqual(oa({ messages: [{ role: "human", content: "x" }] }), [
      'messages[0].role: unknown role "human" (expected system, developer, user, assistant, tool, function)',
    ]);
    assert.deepEqual(checkRequest("openai", RESPONSES, { input: [{ role: "tool", content: "x" }] })!.problems, [
      'input[0].role: unknown role "tool" (expected system, developer, user, assistant)',
    ]);
    assert.deepEqual(an({ max_tokens: 5, messages: [user, { role: "bot", content: "x" }] }), [
      'messages[1].role: unknown role "bot" (expected user, assistant)',
    ]);
  });

  test("content of the wrong type", () => {
    assert.deepEqual(oa({ messages: [{ role: "user", content: { type: "text", text: "x" } }] }), [
      "messages[0].content: must be a string or an array of content parts, got object",
    ]);
    assert.deepEqual(oa({ messages: [{ role: "user", content: ["x"] }] }), [
      'messages[0].content[0]: must be a content part object with a "type", got "x"',
    ]);
    assert.deepEqual(oa({ messages: [{ role: "user" }] }), ["messages[0].content: required, a string or an array of content parts"]);
    assert.deepEqual(an({ max_tokens: 5, messages: [{ role: "user", content: 42 }] }), [
      "messages[0].content: must be a string or an array of content blocks, got number",
    ]);
    assert.deepEqual(an({ max_tokens: 5, system: { text: "x" }, messages: [user] }), [
      "system: must be a string or an array of text blocks, got object",
    ]);
  });

  test("Anthropic: a first message that is not user, a system role inside messages", () => {
    assert.deepEqual(an({ max_tokens: 5, messages: [{ role: "assistant", content: "x" }, user] }), [
      'messages[0].role: the first message must be "user", got "assistant"',
    ]);
    assert.deepEqual(an({ max_tokens: 5, messages: [{ role: "system", content: "be brief" }, user] }), [
      'messages[0].role: "system" is not a message role; pass the system prompt as the top-level system parameter',
    ]);
  });

  test("Anthropic: max_tokens missing, not a positive integer, above the model's output limit", () => {
    assert.deepEqual(an({ messages: [user] }), ["max_tokens: required, the most tokens to generate"]);
    assert.deepEqual(an({ max_tokens: 0, messages: [user] }), ["max_tokens: must be an integer >= 1, got number"]);
    const check = checkRequest("anthropic", MESSAGES, { max_tokens: 10_000, messages: [user] })!;
    assert.deepEqual(modelProblems(check, "claude-3-5-haiku-20241022", book.limitsOf("claude-3-5-haiku-20241022")), [
      "max_tokens: 10000 is above the output limit of claude-3-5-haiku-20241022 (8192)",
    ]);
    assert.deepEqual(modelProblems(check, "claude-sonnet-4-5", book.limitsOf("claude-sonnet-4-5")), []);
    assert.deepEqual(modelProblems(check, "unknown-model", book.limitsOf("unknown-model")), [], "no limit known: nothing to check");
    const oaCheck = checkRequest("openai", CHAT, { max_tokens: 100_000, messages: [user] })!;
    assert.deepEqual(
      modelProblems(oaCheck, "gpt-4o-mini", book.limitsOf("gpt-4o-mini")),
      [],
      "only Anthropic's max_tokens is checked against the model",
    );
  });
});

describe("context window", () => {
  test("the input lower bound: non-space characters / 6, keys and base64 media left out", () => {
    assert.equal(minInputTokens("abcdef abcdef"), 2);
    assert.equal(minInputTokens({ messages: [{ role: "user", content: "x".repeat(600) }] }), Math.floor((4 + 600) / 6));
    const image = { type: "image", source: { type: "base64", media_type: "image/png", data: "A".repeat(100_000) } };
    assert.equal(minInputTokens([image]), Math.floor("imagebase64image/png".length / 6));
  });

  test("a request certainly over the window overflows; one the tokenizer might fit does not", () => {
    const big = (chars: number) => checkRequest("openai", CHAT, { messages: [{ role: "user", content: "word ".repeat(chars / 4) }] })!;
    const limits = book.limitsOf("gpt-4o")!; // 128,000 tokens
    assert.equal(overflowsContext(big(800_000), limits), true, "800K non-space chars ≥ 133K tokens");
    assert.equal(overflowsContext(big(600_000), limits), false, "600K chars may be 100K tokens");
    assert.equal(overflowsContext(big(800_000), undefined), false, "unknown window: never");
  });
});
