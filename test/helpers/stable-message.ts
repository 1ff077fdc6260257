/**
 * An SDK error message without what differs from one run to the next: the provider's request id and
 * the loopback server's port (newer SDKs put both in their messages).
 */
export function stableMessage(message: string): string {
  return message.replace(/\breq_[A-Za-z0-9]+/g, "req_<id>").replace(/\b127\.0\.0\.1:\d+/g, "127.0.0.1:<port>");
}
