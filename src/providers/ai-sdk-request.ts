import { num } from "./read.js";
import { minInputTokens } from "./request-size.js";
import type { Operation, RequestCheck } from "./types.js";
import { describe } from "./validate-content.js";

/**
 * The size and the validity of an AI SDK model call's request, read from the AI SDK's call options
 * (`prompt`, `tools`, `responseFormat`, `maxOutputTokens`; `values` for embeddings) rather than from
 * the wire body the provider builds from them.
 */

/** One model call: the model it asks for and the AI SDK's call options. */
export interface AiSdkRequest {
  readonly modelId: string | undefined;
  readonly options: any;
  readonly method: "doGenerate" | "doStream" | "doEmbed";
}

/**
 * Stands for one file part (image, PDF, audio: bytes, base64 or URL) as the token estimates count an
 * inline one: a `data:` URL is one media item, whatever its length. Bytes are never serialised.
 */
const MEDIA = `data:;base64,${"A".repeat(512)}`;
const FILE_PARTS = new Set(["file", "image", "reasoning-file"]);

/** The prompt with its file parts replaced by {@link MEDIA}; the prompt itself when it has none. */
function countablePrompt(prompt: unknown): unknown {
  if (!Array.isArray(prompt)) return prompt;
  let out: unknown[] | undefined;
  prompt.forEach((m, i) => {
    const content = m?.content;
    if (!Array.isArray(content) || !content.some((p) => FILE_PARTS.has(p?.type))) return;
    out ??= prompt.slice();
    out[i] = { ...m, content: content.map((p) => (FILE_PARTS.has(p?.type) ? { type: p.type, data: MEDIA } : p)) };
  });
  return out ?? prompt;
}

/** The parts of the call the provider bills as input: the prompt, tool definitions and the response schema. */
export function aiSdkRequestInput(op: Operation, req: AiSdkRequest): unknown {
  const o = req?.options;
  if (!o || typeof o !== "object") return undefined;
  if (op.kind === "embeddings") return o.values;
  return { prompt: countablePrompt(o.prompt), tools: o.tools, responseFormat: o.responseFormat };
}

/**
 * The output tokens the call asks for at most: `maxOutputTokens`, plus an explicit Anthropic thinking
 * budget (@ai-sdk/anthropic adds it to max_tokens). Undefined when the provider decides: no
 * `maxOutputTokens`, or a thinking budget it works out itself (the `reasoning` option).
 */
export function aiSdkRequestedOutputTokens(family: "openai" | "anthropic", op: Operation, req: AiSdkRequest): number | undefined {
  const o = req?.options;
  if (op.kind === "embeddings") return 0;
  const max = num(o?.maxOutputTokens);
  if (max === undefined || family !== "anthropic") return max;
  const thinking = o.providerOptions?.anthropic?.thinking;
  if (thinking?.type === "enabled") return max + (num(thinking.budgetTokens) ?? 0);
  const reasoning = o.reasoning;
  return reasoning === undefined || reasoning === "provider-default" || reasoning === "none" ? max : undefined;
}

const CHECKED = new Set<Operation["kind"]>(["chat", "responses", "completions", "messages"]);
/** The roles of the AI SDK's model prompt: the providers throw on any other before sending. */
const ROLES = new Set(["system", "user", "assistant", "tool"]);

/**
 * What is certainly refused in a language model call, in the AI SDK's prompt shape: a prompt that is
 * not a list of messages with the AI SDK's roles (the providers cannot convert it), an empty prompt to
 * Chat Completions or Messages, and a Messages prompt of system messages only (@ai-sdk/anthropic lifts
 * them into `system`, leaving no message). The rest of the SDKs' checks do not apply: the AI SDK shapes
 * the content itself, fills in max_tokens and caps it at the model's limit.
 */
export function checkAiSdkRequest(op: Operation, req: AiSdkRequest): RequestCheck | undefined {
  if (!CHECKED.has(op.kind) || req?.method === "doEmbed") return undefined;
  const prompt = req?.options?.prompt;
  return { problems: promptProblems(op, prompt), minInputTokens: minInputTokens(aiSdkRequestInput(op, req)) };
}

function promptProblems(op: Operation, prompt: unknown): string[] {
  if (!Array.isArray(prompt)) return [`prompt: must be an array of messages, got ${describe(prompt)}`];
  if (prompt.length === 0) return op.kind === "chat" || op.kind === "messages" ? ["prompt: must not be empty"] : [];
  const problems: string[] = [];
  prompt.forEach((m, i) => {
    if (!m || typeof m !== "object" || Array.isArray(m)) problems.push(`prompt[${i}]: must be a message object, got ${describe(m)}`);
    else if (!ROLES.has(m.role)) problems.push(`prompt[${i}].role: unknown role ${describe(m.role)} (expected ${[...ROLES].join(", ")})`);
  });
  if (problems.length === 0 && op.kind === "messages" && prompt.every((m) => m.role === "system")) {
    problems.push("prompt: system messages only; Anthropic needs at least one user, assistant or tool message");
  }
  return problems;
}
