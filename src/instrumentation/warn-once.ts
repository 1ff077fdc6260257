import { log } from "../telemetry/logger.js";

const warned = new Set<string>();

/** One warning per `key` for the process: what cannot be instrumented is said once, never per call. */
export function warnOnce(key: string, message: string, extra: Record<string, unknown>): void {
  if (warned.has(key)) return;
  warned.add(key);
  log().warn(extra, message);
}
