import pino, { type Logger } from "pino";
import type { LogLevel } from "../config.js";

let logger: Logger | undefined;

/** The application's pino logger (a child of it) or ours, writing JSON lines to stdout. */
export function setLogger(userLogger: unknown, level: LogLevel): Logger {
  if (userLogger && typeof (userLogger as Logger).child === "function") {
    logger = (userLogger as Logger).child({ lib: "llm-resilience" });
  } else {
    logger = pino({ name: "llm-resilience", level });
  }
  return logger;
}

export function log(): Logger {
  return (logger ??= pino({ name: "llm-resilience", level: "info" }));
}

/** Reports a problem of our own once per kind, never to the caller. */
const reported = new Set<string>();
export function reportOnce(kind: string, err?: unknown): void {
  if (reported.has(kind)) return;
  reported.add(kind);
  try {
    log().warn({ err: err instanceof Error ? { type: err.name, message: err.message } : err, kind }, `llm-resilience: ${kind}`);
  } catch {
    // a broken logger must not break the call either
  }
}
