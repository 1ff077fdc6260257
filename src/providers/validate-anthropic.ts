import type { Operation } from "./types.js";
import { contentProblem, describe, messagesProblem } from "./validate-content.js";

/** What Anthropic refuses with a 400 in a Messages request body (the model's own limits are checked apart). */
export function anthropicProblems(op: Operation, b: Record<string, unknown>): string[] {
  if (op.kind !== "messages") return [];
  const problems: string[] = [];
  const max = b.max_tokens;
  if (max === undefined || max === null) problems.push("max_tokens: required, the most tokens to generate");
  else if (typeof max !== "number" || !Number.isInteger(max) || max < 1) problems.push(`max_tokens: must be an integer >= 1, got ${describe(max)}`);

  if (b.system !== undefined && b.system !== null) {
    const s = contentProblem("system", b.system, false, "text block");
    if (s) problems.push(s);
  }

  const p = messagesProblem("messages", b.messages);
  if (p) return [...problems, p];
  (b.messages as unknown[]).forEach((m, i) => {
    const at = `messages[${i}]`;
    if (!m || typeof m !== "object" || Array.isArray(m)) {
      problems.push(`${at}: must be a message object, got ${describe(m)}`);
      return;
    }
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (role === "system") {
      problems.push(`${at}.role: "system" is not a message role; pass the system prompt as the top-level system parameter`);
      return;
    }
    if (role !== "user" && role !== "assistant") {
      problems.push(`${at}.role: unknown role ${describe(role)} (expected user, assistant)`);
      return;
    }
    if (i === 0 && role !== "user") problems.push(`${at}.role: the first message must be "user", got "${role}"`);
    const c = contentProblem(`${at}.content`, content, false, "content block");
    if (c) problems.push(c);
  });
  return problems;
}
