import { reportOnce } from "../telemetry/logger.js";
import { ownerOf } from "./owner-of.js";

const PATCHED = Symbol.for("llm-resilience.patched-as-response");
/** On a request's `responsePromise` (shared by every APIPromise of that request): its watch. */
const kRawResponse = Symbol("llm-resilience.raw-response");

/** The call's side: whether `response.body` is left to the SDK's parser. */
export interface BodyReader {
  bodyLeftToSdk: boolean;
}

/**
 * Whether the caller asked for the raw Response (`asResponse()`, also behind `withResponse()`). Until
 * then the SDK's parser reads the body, and the call need not watch `response.body`: that watch, a
 * ReadableStream built per response, cost ~11k instructions and kept more alive until the next
 * scavenge, on every Anthropic call (its parser checks `response.body?.locked`) and every stream (a
 * debug-log argument reads `response.body`). Without the hook (an SDK shape we do not know), the call
 * watches its body as before.
 */
export class RawResponseWatch {
  private call: BodyReader | undefined;
  private hooked = false;
  private asked = false;

  attach(call: BodyReader): void {
    this.call = call;
    this.update();
  }

  /** Called once `asResponse` of this request's promises is watched. */
  hook(): void {
    this.hooked = true;
    this.update();
  }

  asResponse(): void {
    this.asked = true;
    this.update();
  }

  private update(): void {
    if (this.call) this.call.bodyLeftToSdk = this.hooked && !this.asked;
  }
}

/** Watches `asResponse()` on every APIPromise of the request `promise` belongs to; false when the SDK's shape has no seam for it. */
export function watchAsResponse(promise: any, watch: RawResponseWatch): boolean {
  const shared = promise?.responsePromise;
  if (!shared || typeof shared !== "object" || !patchAsResponse(promise)) return false;
  shared[kRawResponse] = watch;
  return true;
}

let lastProto: object | undefined;

/** Patches `asResponse` of the promise's APIPromise class, once per class (each SDK build has its own). */
function patchAsResponse(promise: object): boolean {
  const proto = Object.getPrototypeOf(promise);
  if (proto === lastProto) return true;
  const owner = ownerOf(proto, "asResponse");
  const original = owner?.asResponse;
  if (typeof original !== "function") return false;
  if (!original[PATCHED]) {
    const asResponse = function (this: any, ...args: unknown[]) {
      const watch: RawResponseWatch | undefined = this?.responsePromise?.[kRawResponse];
      if (watch !== undefined) {
        try {
          watch.asResponse();
        } catch (err) {
          reportOnce("telemetry error watching asResponse()", err);
        }
      }
      return original.apply(this, args);
    };
    Object.defineProperty(asResponse, "name", { value: original.name || "asResponse" });
    Object.defineProperty(asResponse, PATCHED, { value: true });
    const desc = Object.getOwnPropertyDescriptor(owner, "asResponse")!;
    Object.defineProperty(owner, "asResponse", { ...desc, value: asResponse });
  }
  lastProto = proto;
  return true;
}
