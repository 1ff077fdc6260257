/** A real pino logger writing JSON lines into memory, for tests that read our log output. */
import { Writable } from "node:stream";
import pino, { type Logger } from "pino";

export interface MemoryLogger {
  logger: Logger;
  /** Parsed JSON lines, in order. */
  lines: any[];
  /** The raw text written, for substring searches. */
  raw(): string;
  /** Called with each parsed line as it is written (synchronously with the log call). */
  onLine?: (line: any) => void;
  reset(): void;
}

export function memoryLogger(level: pino.LevelWithSilent = "info"): MemoryLogger {
  const chunks: string[] = [];
  const m: MemoryLogger = {
    logger: undefined as unknown as Logger,
    lines: [],
    raw: () => chunks.join(""),
    reset() {
      chunks.length = 0;
      m.lines.length = 0;
    },
  };
  const stream = new Writable({
    write(chunk, _enc, cb) {
      const text = String(chunk);
      chunks.push(text);
      for (const line of text.split("\n")) {
        if (!line) continue;
        const parsed = JSON.parse(line);
        m.lines.push(parsed);
        m.onLine?.(parsed);
      }
      cb();
    },
  });
  m.logger = pino({ level }, stream);
  return m;
}

/** The JSON object printed by a fixture on its `RESULT {...}` line, or undefined. */
export function resultLine(stdout: string): any {
  const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
  return line ? JSON.parse(line.slice("RESULT ".length)) : undefined;
}
