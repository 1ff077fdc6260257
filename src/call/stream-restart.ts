/**
 * After a retried attempt of a stream that failed before reaching the caller: an iterator over the new
 * response, built by the SDK's own Stream class, for the caller's iteration to continue on.
 */
export function iteratorOnRetriedResponse(stream: any, props: any, client: unknown): AsyncIterator<unknown> {
  const StreamClass = props.options?.__streamClass ?? stream.constructor;
  // openai <= 4.12: no Stream.fromSSEResponse; its constructor takes (response, controller).
  const fresh =
    typeof StreamClass.fromSSEResponse === "function"
      ? StreamClass.fromSSEResponse(props.response, props.controller, client, props.options?.__synthesizeEventData, props.options?.__streamMode)
      : new StreamClass(props.response, props.controller);
  if ("controller" in stream) stream.controller = props.controller; // so the caller's abort() reaches the live request
  return typeof fresh.iterator === "function" ? fresh.iterator() : fresh[Symbol.asyncIterator]();
}

export function isStream(data: any): boolean {
  // openai <= 4.12's Stream has no `iterator`, only [Symbol.asyncIterator].
  return (
    data !== null &&
    typeof data === "object" &&
    (typeof data.iterator === "function" || typeof data[Symbol.asyncIterator] === "function") &&
    "controller" in data
  );
}
