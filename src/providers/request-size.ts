import { num } from "./read.js";
import type { Operation } from "./types.js";

/** The parts of a request body the provider bills as input tokens (messages, system prompt, tools). */
export function requestInput(op: Operation, b: any): unknown {
  if (!b || typeof b !== "object") return undefined;
  switch (op.kind) {
    case "chat":
      return { messages: b.messages, tools: b.tools, functions: b.functions, response_format: b.response_format };
    case "responses":
      return { instructions: b.instructions, input: b.input, tools: b.tools, text: b.text };
    case "messages":
    case "count_tokens":
      return { system: b.system, messages: b.messages, tools: b.tools };
    case "completions":
      return b.prompt;
    case "embeddings":
      return b.input;
    default:
      return undefined;
  }
}

/** The output tokens a request asks for at most (its max tokens × choices), when it says. */
export function requestedOutputTokens(op: Operation, b: any): number | undefined {
  if (!b || typeof b !== "object") return undefined;
  if (op.kind === "embeddings") return 0;
  const max = num(b.max_completion_tokens) ?? num(b.max_tokens) ?? num(b.max_output_tokens);
  if (max === undefined) return undefined;
  const n = op.kind === "chat" || op.kind === "completions" ? (num(b.n) ?? 1) : 1;
  return Math.max(0, max) * Math.max(1, n);
}

// A lower bound, not an estimate: real text and code take more than one token per 6 non-space
// characters in every tokenizer in use, so input counted this way above the context window is
// above it whatever the tokenizer.
const MAX_CHARS_PER_TOKEN = 6;
const MEDIA_MIN_CHARS = 512;

/**
 * The fewest tokens `input` can be: its text's non-space characters / 6. Keys, JSON syntax and
 * base64 media (images, documents) are not counted.
 */
export function minInputTokens(input: unknown): number {
  let chars = 0;
  const visit = (v: unknown, key: string, depth: number): void => {
    if (typeof v === "string") {
      if (v.length >= MEDIA_MIN_CHARS && (key === "data" || v.startsWith("data:"))) return;
      chars += nonSpace(v);
    } else if (depth < 32 && v !== null && typeof v === "object") {
      if (Array.isArray(v)) for (const x of v) visit(x, key, depth + 1);
      else for (const k in v) visit((v as Record<string, unknown>)[k], k, depth + 1);
    }
  };
  visit(input, "", 0);
  return Math.floor(chars / MAX_CHARS_PER_TOKEN);
}

function nonSpace(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 32 && c !== 10 && c !== 13 && c !== 9) n++;
  }
  return n;
}
