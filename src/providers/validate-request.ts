import { minInputTokens, requestInput } from "./request-size.js";
import type { Operation, RequestCheck, RequestLimits } from "./types.js";
import { anthropicProblems } from "./validate-anthropic.js";
import { openaiProblems } from "./validate-openai.js";

const CHECKED = new Set<Operation["kind"]>(["chat", "responses", "completions", "messages"]);

/**
 * Checks a request to a generating operation (chat, responses, legacy completions, messages);
 * undefined for the others. Only what the API is known to refuse is a problem: a request the API
 * accepts must never be stopped here.
 */
export function checkRequest(sdk: "openai" | "anthropic", op: Operation, body: unknown): RequestCheck | undefined {
  if (!CHECKED.has(op.kind) || !body || typeof body !== "object") return undefined;
  const b = body as Record<string, unknown>;
  const problems = sdk === "anthropic" ? anthropicProblems(op, b) : openaiProblems(op, b);
  const maxTokens = sdk === "anthropic" && typeof b.max_tokens === "number" ? b.max_tokens : undefined;
  return { problems, minInputTokens: minInputTokens(requestInput(op, b)), ...(maxTokens !== undefined && { boundedMaxTokens: maxTokens }) };
}

/** What the provider would refuse in this request for `model` in particular. */
export function modelProblems(check: RequestCheck, model: string, limits: RequestLimits | undefined): string[] {
  const max = limits?.maxOutputTokens;
  if (check.boundedMaxTokens !== undefined && max !== undefined && check.boundedMaxTokens > max) {
    return [`max_tokens: ${check.boundedMaxTokens} is above the output limit of ${model} (${max})`];
  }
  return [];
}

/** True when the request's input is certainly larger than the model's context window. */
export function overflowsContext(check: RequestCheck, limits: RequestLimits | undefined): boolean {
  const window = limits?.contextWindow;
  return window !== undefined && check.minInputTokens > window;
}
