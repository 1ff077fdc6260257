/** What a response's owner (the call that received it) is told about reads of its body. */
export interface BodyOwner {
  bodyRead(method: string, read: Promise<unknown>): void;
  /** Whether `response.body` is still the owner's to observe (the SDK has not parsed, the call is open). */
  bodyStreamOpen(): boolean;
  /** An observer of `original` to hand out as `response.body` (built once per response). */
  bodyStream(original: ReadableStream): ReadableStream;
}

/** On the Response of a call's last attempt: the call that owns it. */
export const kBodyOwner = Symbol("llm-resilience.body-owner");
