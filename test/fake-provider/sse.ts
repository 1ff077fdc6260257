import type { ServerResponse } from 'node:http';

/** Resolves after `ms`, or early (without throwing) when `signal` aborts; never leaves a timer behind. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Waits for 'drain', or until `signal` aborts (the socket is gone and 'drain' will never come). */
function drained(res: ServerResponse, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Resolves with `p`, or as soon as `signal` aborts. */
function untilAborted(p: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    p.then(done, done);
  });
}

/** Writes `data` and resolves once it has been handed to the socket (so a following destroy() cannot drop it). */
export function writeThrough(res: ServerResponse, data: string, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return untilAborted(new Promise((resolve) => res.write(data, () => resolve())), signal);
}

/**
 * Coalesces SSE frames into ~16 KiB writes and honours backpressure, so a
 * 100k-chunk stream costs few syscalls and flat memory even with a slow reader.
 * With `encode`, each frame is re-encoded into a binary framing (Bedrock's event-stream) first.
 */
export class SseWriter {
  #buf = '';
  #bin: Buffer[] = [];
  #binLength = 0;
  /** Settles when the most recent write reached the socket. */
  #written: Promise<void> = Promise.resolve();
  readonly #res: ServerResponse;
  readonly #signal: AbortSignal;
  readonly #encode: ((frame: string) => Buffer) | undefined;
  readonly #highWater: number;

  constructor(res: ServerResponse, signal: AbortSignal, encode?: (frame: string) => Buffer, highWater = 16 * 1024) {
    this.#res = res;
    this.#signal = signal;
    this.#encode = encode;
    this.#highWater = highWater;
  }

  get aborted(): boolean {
    return this.#signal.aborted;
  }

  async write(frame: string): Promise<void> {
    if (this.#encode) {
      const bytes = this.#encode(frame);
      this.#bin.push(bytes);
      this.#binLength += bytes.length;
      if (this.#binLength >= this.#highWater) await this.flush();
      return;
    }
    this.#buf += frame;
    if (this.#buf.length >= this.#highWater) await this.flush();
  }

  /** What is buffered, taken out of the buffer; undefined when empty. */
  #take(): string | Buffer | undefined {
    if (this.#binLength > 0) {
      const data = Buffer.concat(this.#bin, this.#binLength);
      this.#bin = [];
      this.#binLength = 0;
      return data;
    }
    if (!this.#buf) return undefined;
    const data = this.#buf;
    this.#buf = '';
    return data;
  }

  async flush(): Promise<void> {
    if (this.#signal.aborted) return;
    const data = this.#take();
    if (data === undefined) return;
    let ok = true;
    this.#written = new Promise((resolve) => {
      ok = this.#res.write(data, () => resolve());
    });
    if (!ok) await drained(this.#res, this.#signal);
  }

  /** Flushes and waits until everything written so far reached the socket. */
  async flushThrough(): Promise<void> {
    await this.flush();
    await untilAborted(this.#written, this.#signal);
  }

  async end(): Promise<void> {
    await this.flush();
    if (!this.#signal.aborted) this.#res.end();
  }
}
