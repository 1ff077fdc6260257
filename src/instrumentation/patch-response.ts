import { type BodyOwner, kBodyOwner } from "../call/body-owner.js";
import { reportOnce } from "../telemetry/logger.js";
import { ownerOf } from "./owner-of.js";

const BODY_METHODS = ["text", "json", "arrayBuffer", "bytes", "blob", "formData"] as const;
const PATCHED = Symbol.for("llm-resilience.patched-body");
const kObservedBody = Symbol("llm-resilience.observed-body");

let lastProto: object | undefined;

/** Tags the response of a call's last attempt with the call that owns it, and watches its class. */
export function ownResponse(response: unknown, owner: BodyOwner | undefined): void {
  if (!owner || !response || typeof response !== "object") return;
  try {
    watchResponseClass(response);
    (response as { [kBodyOwner]?: BodyOwner })[kBodyOwner] = owner;
  } catch (err) {
    reportOnce("telemetry error in watch the response body", err);
  }
}

/**
 * Patches the class of a response an SDK call returned (undici's `Response` for fetch, node-fetch's
 * for openai 4), once per class: its body-reading methods and its `body` getter tell the call that
 * owns a response (`response[kBodyOwner]`, set after each call's last attempt) how its body was read.
 * Responses no call owns take the original path after one property read.
 */
function watchResponseClass(response: object): void {
  const proto = Object.getPrototypeOf(response);
  if (!proto || proto === lastProto) return;
  lastProto = proto;
  for (const method of BODY_METHODS) patchMethod(proto, method);
  patchBodyGetter(proto);
}

function patchMethod(proto: object, method: string): void {
  const owner = ownerOf(proto, method);
  const original = owner?.[method];
  if (typeof original !== "function" || original[PATCHED]) return;
  const watched = function (this: any, ...args: unknown[]) {
    const result = original.apply(this, args);
    const call: BodyOwner | undefined = this?.[kBodyOwner];
    if (call !== undefined && typeof result?.then === "function") {
      try {
        call.bodyRead(method, result);
      } catch (err) {
        reportOnce("telemetry error watching a response body", err);
      }
    }
    return result;
  };
  Object.defineProperty(watched, "name", { value: original.name || method });
  Object.defineProperty(watched, PATCHED, { value: true });
  const desc = Object.getOwnPropertyDescriptor(owner, method)!;
  Object.defineProperty(owner, method, { ...desc, value: watched });
}

function patchBodyGetter(proto: object): void {
  const owner = ownerOf(proto, "body");
  const desc: PropertyDescriptor | undefined = owner && Object.getOwnPropertyDescriptor(owner, "body");
  const get = desc?.get as ((this: unknown) => any) | undefined;
  if (!get || (get as any)[PATCHED] || typeof ReadableStream !== "function") return;
  const watchedGet = function (this: any) {
    const original = get.call(this);
    const call: BodyOwner | undefined = this?.[kBodyOwner];
    if (call === undefined || !original || typeof original.getReader !== "function") return original;
    try {
      if (!call.bodyStreamOpen()) return original;
      this[kObservedBody] ??= call.bodyStream(original);
      return this[kObservedBody];
    } catch (err) {
      reportOnce("telemetry error watching a response body", err);
      return original;
    }
  };
  Object.defineProperty(watchedGet, PATCHED, { value: true });
  Object.defineProperty(owner, "body", { ...desc, get: watchedGet });
}
