import pino, { type Logger } from "pino";
import type { LogLevel } from "../config.js";

let logger: Logger | undefined;

/**
 * Ours: JSON lines on stdout through an asynchronous destination, so a log line never costs the
 * caller a write(2); pino flushes what is pending when the process exits.
 */
function ownLogger(level: LogLevel): Logger {
  return pino({ name: "llm-resilience", level }, pino.destination({ dest: 1, sync: false }));
}

/** The application's pino logger (a child of it) or ours. */
export function setLogger(userLogger: unknown, level: LogLevel): Logger {
  if (userLogger && typeof (userLogger as Logger).child === "function") {
    logger = (userLogger as Logger).child({ lib: "llm-resilience" });
  } else {
    logger = ownLogger(level);
  }
  return logger;
}

export function log(): Logger {
  logger ??= ownLogger("info");
  return logger;
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
