import type { Logger } from "pino";
import type { LogLevel } from "../config.js";

let logger: Logger | undefined;
let loggerIsOwn = false;
/** The level of our own logger, which is created at its first line (pino is not loaded before). */
let ownLevel: LogLevel = "info";
const LEVEL_VALUES: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/**
 * Ours: JSON lines on stdout through an asynchronous destination, so a log line never costs the
 * caller a write(2); pino flushes what is pending when the process exits.
 */
function ownLogger(level: LogLevel): Logger {
  const pino = require("pino") as typeof import("pino");
  return pino({ name: "llm-resilience", level }, pino.destination({ dest: 1, sync: false }));
}

/** The application's pino logger (a child of it), or ours at `level`. */
export function setLogger(userLogger: unknown, level: LogLevel): void {
  if (userLogger && typeof (userLogger as Logger).child === "function") {
    logger = (userLogger as Logger).child({ lib: "llm-resilience" });
    loggerIsOwn = false;
  } else {
    if (!loggerIsOwn) logger = undefined;
    else if (logger) logger.level = level;
    ownLevel = level;
  }
}

export function log(): Logger {
  if (!logger) {
    logger = ownLogger(ownLevel);
    loggerIsOwn = true;
  }
  return logger;
}

/** Whether a line at `level` would be written, without creating our logger to find out. */
export function logLevelEnabled(level: LogLevel): boolean {
  return logger ? logger.isLevelEnabled(level) : LEVEL_VALUES[level] >= LEVEL_VALUES[ownLevel];
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
