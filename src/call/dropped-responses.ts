/** The call behind a response handed to the caller, as the registry below sees it. */
export interface ResponseOwner {
  /** The response was collected; `handedOutAt` (performance.now()) is when the call returned it. */
  unread(handedOutAt: number): void;
}

/** Held by the registry: must not reach the response, or the response never dies. */
interface HandedOut {
  readonly owner: ResponseOwner;
  readonly at: number;
}

const handedOut = new FinalizationRegistry<HandedOut>((h) => h.owner.unread(h.at));

/**
 * The response of a call's last attempt, as the SDK hands it on: if nobody ever reads its body (the
 * SDK's parser, or the caller after `asResponse()`), the call ends when the response is collected.
 */
export function endWhenUnread(response: object, owner: ResponseOwner): void {
  handedOut.register(response, { owner, at: performance.now() });
}
