// Internal contract between the server and the per-provider wire formats.
import { randomBytes } from 'node:crypto';
import type { ResponseDefaults } from './types';

/** What a format needs to know about one request. */
export interface RequestInfo {
  method: string;
  path: string;
  body: any;
  model: string;
  stream: boolean;
  defaults: ResponseDefaults;
}

/**
 * A streamed answer, produced lazily so huge streams never materialise.
 * Each string is one or more complete SSE frames. Methods are called in
 * order head → chunk(0..count-1) → tail, or head → chunk(..) → error.
 */
export interface StreamBody {
  readonly count: number;
  head(): string[];
  chunk(i: number): string;
  tail(): string[];
  error(type?: string, message?: string): string;
}

export interface Endpoint {
  json(info: RequestInfo): unknown;
  /** Absent when the endpoint never streams (embeddings, count_tokens, ...). */
  stream?(info: RequestInfo): StreamBody;
}

export interface ErrorSpec {
  errorType?: string;
  errorCode?: string;
  message?: string;
}

export interface ProviderFormat {
  endpoint(method: string, path: string): Endpoint | undefined;
  errorBody(status: number, spec: ErrorSpec): unknown;
  /** Request id and rate-limit headers carried by every answer. */
  headers(): Record<string, string>;
}

export function randomId(bytes = 12): string {
  return randomBytes(bytes).toString('hex');
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export const STRUCTURED_ANSWER = '{"answer":4}';

/** Chunk i of a plain-text answer. */
export function textChunk(i: number): string {
  return `tok${i} `;
}

export function fullText(chunks: number): string {
  let text = '';
  for (let i = 0; i < chunks; i++) text += textChunk(i);
  return text;
}

/**
 * The i-th of n slices of `text`; the n slices concatenate to `text`.
 * Lets a structured (JSON) answer be streamed over the configured chunk count.
 */
export function slice(text: string, i: number, n: number): string {
  const start = Math.floor((i * text.length) / n);
  const end = Math.floor(((i + 1) * text.length) / n);
  return text.slice(start, end);
}

/** Produces the streamed content pieces; their concatenation equals the JSON answer's text. */
export function pieces(structured: boolean, n: number): { count: number; piece(i: number): string; full(): string } {
  if (structured) {
    // At least one piece: an empty structured answer would not parse.
    const count = Math.max(1, Math.floor(n));
    return { count, piece: (i) => slice(STRUCTURED_ANSWER, i, count), full: () => STRUCTURED_ANSWER };
  }
  const count = Math.max(0, Math.floor(n));
  return { count, piece: textChunk, full: () => fullText(count) };
}

export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

export function sseEvent(event: string, payload: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(payload)}\n\n`;
}
