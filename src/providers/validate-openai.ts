import type { Operation } from "./types.js";
import { contentProblem, describe, messagesProblem } from "./validate-content.js";

const CHAT_ROLES = new Set(["system", "developer", "user", "assistant", "tool", "function"]);
const INPUT_ROLES = new Set(["system", "developer", "user", "assistant"]);
/** Roles whose message may carry no content (a tool call, a function call). */
const NULLABLE = new Set(["assistant", "function"]);

/** What OpenAI refuses with a 400 in a Chat Completions or Responses request body. */
export function openaiProblems(op: Operation, b: Record<string, unknown>): string[] {
  const problems: string[] = [];
  if (op.kind === "chat") {
    const p = messagesProblem("messages", b.messages);
    if (p) return [p];
    (b.messages as unknown[]).forEach((m, i) => {
      const at = `messages[${i}]`;
      if (!m || typeof m !== "object" || Array.isArray(m)) {
        problems.push(`${at}: must be a message object, got ${describe(m)}`);
        return;
      }
      const { role, content } = m as { role?: unknown; content?: unknown };
      if (typeof role !== "string" || !CHAT_ROLES.has(role)) {
        problems.push(`${at}.role: unknown role ${describe(role)} (expected ${[...CHAT_ROLES].join(", ")})`);
        return;
      }
      const c = contentProblem(`${at}.content`, content, NULLABLE.has(role));
      if (c) problems.push(c);
    });
  } else if (op.kind === "responses" && Array.isArray(b.input)) {
    b.input.forEach((item, i) => {
      // Only messages carry a role; other items (function_call_output, reasoning, …) are not checked.
      if (!item || typeof item !== "object" || !("role" in item)) return;
      const at = `input[${i}]`;
      const { role, content } = item as { role?: unknown; content?: unknown };
      if (typeof role !== "string" || !INPUT_ROLES.has(role)) {
        problems.push(`${at}.role: unknown role ${describe(role)} (expected ${[...INPUT_ROLES].join(", ")})`);
        return;
      }
      const c = contentProblem(`${at}.content`, content, false);
      if (c) problems.push(c);
    });
  }
  return problems;
}
