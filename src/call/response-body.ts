import { classify } from "../providers/classify.js";
import type { Operation, ProviderAdapter, ResponseInfo, StreamAccumulator } from "../providers/types.js";
import { type CallRecorder, guard } from "../telemetry/call-recorder.js";
import { reportOnce } from "../telemetry/logger.js";
import type { BodyOwner } from "./body-owner.js";
import type { ResponseOwner } from "./dropped-responses.js";

/** What the body observer needs from the call that received the response. */
export interface BodyCall {
  readonly recorder: CallRecorder;
  readonly adapter: ProviderAdapter;
  readonly op: Operation;
  readonly injectedUsage: boolean;
  /** The SDK's parser has run (JSON read or Stream created). */
  readonly parsed: boolean;
  /** The caller never asked for the raw Response: the SDK's parser reads the body, `response.body` needs no watch. */
  readonly bodyLeftToSdk: boolean;
  /** `at`: when the call ended, if not now (a performance.now() time). */
  succeed(info: ResponseInfo, at?: number): void;
}

/**
 * The body may never reach the SDK's parser: malformed JSON makes the SDK throw, and `asResponse()`
 * skips parsing (JSON and streams alike). Once the body has been read by someone other than the
 * SDK's parser, a call still open is ended here. The Response class's reading methods (`text()`,
 * `json()`, `arrayBuffer()`, `bytes()`, `blob()`, `formData()`) and its `body` getter report every
 * read of a response this owner is tagged on.
 */
export class ResponseBody implements BodyOwner, ResponseOwner {
  /** Someone (the SDK's parser or the caller) began reading the body. */
  private reading = false;
  /** The call went on with another attempt's response: this one's reads tell it nothing. */
  private retired = false;
  /** Why the last read of the body failed (the transport's error, before an SDK wraps it). */
  failedRead: unknown;

  constructor(
    private readonly call: BodyCall,
    /** The request asked for a stream (SSE). */
    private readonly stream: boolean,
  ) {}

  bodyRead(method: string, read: Promise<unknown>): void {
    this.reading = true;
    if (this.retired || this.call.recorder.ended) return;
    // After the SDK's own transform (microtasks) has had its turn to end the call with the data.
    read.then(
      (body) => setImmediate(() => this.afterBodyRead(method, body, undefined)),
      (err) => {
        this.failedRead = err;
        setImmediate(() => this.afterBodyRead(method, undefined, err));
      },
    );
  }

  bodyStreamOpen(): boolean {
    return !this.retired && !this.call.bodyLeftToSdk && !this.call.parsed && !this.call.recorder.ended;
  }

  /** The body failed as the SDK read it and the call retries: what happens to this response is no longer the call's. */
  retire(): void {
    this.retired = true;
  }

  /**
   * The response was garbage-collected and nobody ever read its body (`asResponse()` whose body the
   * caller left alone, or a promise never awaited): the call ends as a success without usage,
   * timestamped when the response was handed out.
   */
  unread(handedOutAt: number): void {
    const call = this.call;
    if (this.retired || this.reading || call.parsed || call.recorder.ended) return;
    guard("unread response", () => {
      reportOnce("a response was handed out and its body never read (asResponse): its span ended when it was garbage-collected");
      call.succeed({}, handedOutAt);
    });
  }

  /**
   * `response.body` of a tagged response: an observer that passes the bytes through. The SDK's
   * parser also reads `body` (streams) and may touch it before parsing (a debug log argument), so
   * the observer reads nothing until read from, and the getter gives way once the SDK parsed.
   */
  bodyStream(original: ReadableStream): ReadableStream {
    const owner = this;
    const call = this.call;
    const stream = this.stream;
    let reader: ReadableStreamDefaultReader | undefined;
    let first = true;
    this.reading = true;
    return new ReadableStream(
      {
        async pull(ctrl) {
          reader ??= original.getReader();
          let r: ReadableStreamReadResult<unknown>;
          try {
            r = await reader.read();
          } catch (err) {
            ctrl.error(err);
            owner.afterBodyStream(err);
            return;
          }
          if (r.done) {
            ctrl.close();
            owner.afterBodyStream(undefined);
            return;
          }
          if (first && stream) {
            first = false;
            if (!call.parsed) guard("first chunk", () => call.recorder.firstChunk());
          }
          ctrl.enqueue(r.value);
        },
        cancel(reason) {
          owner.afterBodyStream(undefined);
          return reader ? reader.cancel(reason) : original.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
  }

  private afterBodyStream(err: unknown): void {
    const call = this.call;
    if (this.retired || call.parsed || call.recorder.ended) return;
    guard("body end", () => {
      if (err !== undefined) {
        call.recorder.fail(classify(err, call.adapter).errorType, err);
        return;
      }
      reportOnce("a response body was read outside the SDK's parser; its usage is not recorded");
      call.succeed({});
    });
  }

  private afterBodyRead(method: string, body: unknown, err: unknown): void {
    const call = this.call;
    if (this.retired || call.recorder.ended) return;
    guard("body read", () => {
      if (err !== undefined) {
        call.recorder.fail(classify(err, call.adapter).errorType, err);
        return;
      }
      let text: string | undefined;
      if (typeof body === "string") text = body;
      else if (body instanceof ArrayBuffer || body instanceof Uint8Array) text = new TextDecoder().decode(body);
      if (this.stream) {
        // Read by the application itself (asResponse on a stream): read the SSE events it got.
        call.succeed(text !== undefined ? infoFromSse(text, call.adapter.streamAccumulator(call.op, call.injectedUsage)) : {});
        return;
      }
      let data: unknown = method === "json" ? body : undefined;
      if (text !== undefined) {
        try {
          data = JSON.parse(text);
        } catch (parseErr) {
          // The SDK's parser threw on this body (or the application got a body that is not JSON).
          call.recorder.fail("_OTHER", parseErr);
          return;
        }
      }
      // Read by the application itself (asResponse): the call succeeded; read what the body says.
      call.succeed(data !== undefined ? call.adapter.responseInfo(call.op, data) : {});
    });
  }
}

/** Runs the stream reader over an SSE body read as a whole (asResponse + text()). */
function infoFromSse(text: string, acc: StreamAccumulator): ResponseInfo {
  for (const line of text.split("\n")) {
    if (!line.startsWith("data:")) continue;
    const payload = line.slice(5).trim();
    if (payload === "" || payload === "[DONE]") continue;
    try {
      acc.add(JSON.parse(payload));
    } catch {
      // not JSON: skip the line
    }
  }
  return acc.info;
}
