/** Shape checks shared by the providers' validators. */

export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "string" ? `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}"` : typeof v;
}

/** Content given as a string or an array of typed parts; `nullable` for messages allowed none. */
export function contentProblem(path: string, content: unknown, nullable: boolean, part = "content part"): string | undefined {
  if (content === undefined || content === null) return nullable ? undefined : `${path}: required, a string or an array of ${part}s`;
  if (typeof content === "string") return undefined;
  if (!Array.isArray(content)) return `${path}: must be a string or an array of ${part}s, got ${describe(content)}`;
  for (let i = 0; i < content.length; i++) {
    const p = content[i];
    if (!p || typeof p !== "object" || Array.isArray(p) || typeof (p as { type?: unknown }).type !== "string") {
      return `${path}[${i}]: must be a ${part} object with a "type", got ${describe(p)}`;
    }
  }
  return undefined;
}

/** The message list: present, an array, not empty. */
export function messagesProblem(path: string, messages: unknown): string | undefined {
  if (messages === undefined || messages === null) return `${path}: required, an array of messages`;
  if (!Array.isArray(messages)) return `${path}: must be an array of messages, got ${describe(messages)}`;
  if (messages.length === 0) return `${path}: must not be empty`;
  return undefined;
}
