/** The provider's request id differs per request (newer SDKs put it in the error message). */
export function withoutRequestId(message: string): string {
  return message.replace(/\breq_[A-Za-z0-9]+/g, "req_<id>");
}
