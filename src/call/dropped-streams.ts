import type { StreamAccumulator } from "../providers/types.js";

/** The call behind a streamed response, as the registry below sees it. */
export interface StreamOwner {
  abandoned(acc: StreamAccumulator): void;
}

/** Held by the registry: must not reach the stream (no closure over it), or the stream never dies. */
export interface UnreadStream {
  readonly owner: StreamOwner;
  readonly acc: StreamAccumulator;
  iterated: boolean;
}

const unreadStreams = new FinalizationRegistry<UnreadStream>((u) => {
  if (!u.iterated) u.owner.abandoned(u.acc);
});

/** A stream returned to the caller and never iterated ends its call when it is garbage-collected. */
export function endWhenDropped(stream: object, unread: UnreadStream): void {
  unreadStreams.register(stream, unread);
}
