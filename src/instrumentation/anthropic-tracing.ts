/** Anthropic SDK ≥1 opens its own call span when a tracer provider exists; ours replaces it. */
export function silenceAnthropicTracing(BaseClass: any): void {
  const proto = BaseClass?.prototype;
  if (!proto || Object.getOwnPropertyDescriptor(proto, "_tracer")) return;
  // An accessor on the prototype turns the constructor's `this._tracer = ...` into a no-op.
  Object.defineProperty(proto, "_tracer", { get: () => undefined, set: () => {}, configurable: true });
}

/** Drops the SDK's own tracer from a client constructed before we patched its class. */
export function silenceClientTracing(client: any): void {
  if (client && Object.hasOwn(client, "_tracer")) {
    try {
      delete client._tracer;
    } catch {
      // frozen client: leave it
    }
  }
}
