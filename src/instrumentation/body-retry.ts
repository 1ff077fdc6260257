import type { RequestProps } from "../call/attempt-loop.js";
import type { BodyRetryCall } from "../call/sdk-kit.js";
import { ownResponse } from "./patch-response.js";

/** The call whose last attempt produced these props (the object the SDK's APIPromise holds). */
const callOfProps = new WeakMap<object, BodyRetryCall>();

/**
 * The props the attempts handed to the SDK: their response is the call's, and where the SDK retries
 * a body that fails as it is read, the retry goes through the call's loop.
 */
export function handOver(ic: BodyRetryCall, props: RequestProps): void {
  ownResponse(props.response, ic.responseBody);
  callOfProps.set(props, ic);
  // @anthropic-ai/sdk 1.17 on: `retry` resends the request when its JSON body breaks on the transport
  // (APIPromise.parseResponseRetrying); the SDK leaves it unset without retries left, or when the
  // response said x-should-retry: false.
  if ("retry" in props && props.response.headers.get("x-should-retry") !== "false") {
    props.retry = () => resend(ic, ic.connectionError(ic.responseBody?.failedRead));
  }
}

async function resend(ic: BodyRetryCall, err: unknown): Promise<RequestProps> {
  const next = await ic.retryBody(err);
  if ("error" in next) throw next.error;
  handOver(ic, next.props);
  return next.props;
}

/**
 * openai 7 (7.57 checked; 7.0 has none): `parseResponseWithTimeout` reads a JSON body within the
 * attempt's timeout and, while retries remain, retries a body that timed out. Ours sends no retries
 * down, so that timeout reaches this wrapper and the call's loop decides, as for any other timeout.
 */
export function retryingBodyTimeout(original: (client: unknown, props: any) => Promise<unknown>) {
  return async function parseResponseWithTimeout(this: unknown, client: unknown, props: any): Promise<unknown> {
    for (;;) {
      try {
        return await original.call(this, client, props);
      } catch (err) {
        const ic = props && typeof props === "object" ? callOfProps.get(props) : undefined;
        if (!ic || (err as Error | null)?.constructor?.name !== "APIConnectionTimeoutError") throw err;
        const next = await ic.retryBody(err);
        if ("error" in next) throw next.error;
        // In place, as the SDK does: every promise of this request holds `props`.
        Object.assign(props, next.props);
        handOver(ic, props);
      }
    }
  };
}
