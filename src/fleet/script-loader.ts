import type { Redis } from "ioredis";
import type { LuaScript } from "./redis-scripts.js";

type Timed = <T>(p: Promise<T>, onLate?: (v: T) => void) => Promise<T>;

/** Loads every script into the server's script cache (on each (re)connection). */
export async function loadScripts(client: Redis, scripts: readonly LuaScript[], timed: Timed): Promise<void> {
  for (const s of scripts) await timed(client.script("LOAD", s.lua));
}

/**
 * Runs a script by its SHA. A server that lost its script cache (restart, SCRIPT FLUSH) answers
 * NOSCRIPT: the script is loaded again (`onReload`) and run once more.
 */
export async function runScript(
  client: Redis,
  s: LuaScript,
  keys: string[],
  args: (string | number)[],
  timed: Timed,
  onReload: () => void,
  onLate?: (reply: unknown[]) => void,
): Promise<unknown[]> {
  const late = onLate as ((v: unknown) => void) | undefined;
  try {
    return (await timed(client.evalsha(s.sha, s.numberOfKeys, ...keys, ...args), late)) as unknown[];
  } catch (err) {
    if (!(err instanceof Error) || !err.message.includes("NOSCRIPT")) throw err;
    onReload();
    await timed(client.script("LOAD", s.lua));
    return (await timed(client.evalsha(s.sha, s.numberOfKeys, ...keys, ...args), late)) as unknown[];
  }
}
