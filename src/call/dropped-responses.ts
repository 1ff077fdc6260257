/** The call behind a response handed to the caller, as the registry below sees it. */
export interface ResponseOwner {
  /** Someone began reading the body, or the call ended: the response needs no watch. */
  readonly settled: boolean;
  /** The response was collected; `handedOutAt` (performance.now()) is when the call returned it. */
  unread(handedOutAt: number): void;
}

/** Held by the registry: must not reach the response, or the response never dies. */
interface HandedOut {
  readonly owner: ResponseOwner;
  readonly at: number;
}

const handedOut = new FinalizationRegistry<HandedOut>((h) => h.owner.unread(h.at));

/** Responses handed out since the last check: [response, owner, at, ...]. */
const pending: unknown[] = [];
let scheduled = false;

/**
 * The response of a call's last attempt, as the SDK hands it on: if nobody ever reads its body (the
 * SDK's parser, or the caller after `asResponse()`), the call ends when the response is collected.
 * Registered only if still unread one turn of the event loop later: an awaited call's parser reads the
 * body within microtasks, and a registration would keep the call's objects (the registry's holdings)
 * alive until the response's collection had run its cleanup, through at least one more scavenge.
 */
export function endWhenUnread(response: object, owner: ResponseOwner): void {
  pending.push(response, owner, performance.now());
  if (scheduled) return;
  scheduled = true;
  setImmediate(registerUnread).unref();
}

function registerUnread(): void {
  scheduled = false;
  for (let i = 0; i < pending.length; i += 3) {
    const owner = pending[i + 1] as ResponseOwner;
    if (!owner.settled) handedOut.register(pending[i] as object, { owner, at: pending[i + 2] as number });
  }
  pending.length = 0;
}
