// Turns one parsed request plus an optional fault into bytes on the wire.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Fault, ResponseDefaults } from './types';
import type { ProviderFormat, RequestInfo, StreamBody } from './format';
import {
  isDelay,
  isHang,
  isMalformedJson,
  isRawBody,
  isReset,
  isStatus,
  isStreamCut,
  isStreamError,
  isSuccess,
} from './faults';
import type { Wire } from './platforms';
import { SseWriter, sleep, writeThrough } from './sse';

export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  /** Aborted when the client goes away or the provider closes. */
  signal: AbortSignal;
  format: ProviderFormat;
  /** The platform's differences on the wire (Bedrock's framing and errors); {} for the provider itself. */
  wire: Wire;
  info: Omit<RequestInfo, 'defaults'>;
  defaults: ResponseDefaults;
  fault: Fault | undefined;
}

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };

function sendBody(res: ServerResponse, status: number, headers: Record<string, string>, contentType: string, body: string) {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': String(Buffer.byteLength(body)),
    ...headers,
  });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, headers: Record<string, string>, body: unknown) {
  sendBody(res, status, headers, 'application/json', typeof body === 'string' ? body : JSON.stringify(body));
}

function resetSocket(socket: Socket) {
  // A TCP RST is closer to a real connection reset than a FIN.
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

function withoutHeaders(o: Partial<ResponseDefaults> & { headers?: Record<string, string> }): Partial<ResponseDefaults> {
  const { headers: _headers, ...rest } = o;
  return rest;
}

export async function respond(x: Exchange): Promise<void> {
  const { res, signal, format, wire, fault } = x;
  if (fault && isHang(fault)) return; // the socket stays open until the client aborts or close()
  if (fault && isReset(fault)) return resetSocket(x.req.socket);

  const defaults = fault && isSuccess(fault) ? { ...x.defaults, ...withoutHeaders(fault.success) } : x.defaults;
  await sleep(defaults.latencyMs, signal);
  if (fault && isDelay(fault)) await sleep(fault.delayMs, signal);
  if (signal.aborted) return;

  const providerHeaders = format.headers();
  const headers = { ...(wire.headers ? wire.headers(providerHeaders) : providerHeaders), ...(fault && isSuccess(fault) ? fault.success.headers : undefined) };
  const sendError = (status: number, spec: Parameters<ProviderFormat['errorBody']>[1], extra?: Record<string, string>, body?: unknown) => {
    const shaped = wire.error ? wire.error(status, spec) : { body: format.errorBody(status, spec), headers: {} };
    return sendJson(res, status, { ...headers, ...shaped.headers, ...extra }, body ?? shaped.body);
  };

  if (fault && isStatus(fault)) return sendError(fault.status, fault, fault.headers, fault.body);
  if (fault && isRawBody(fault)) {
    const contentType = fault.contentType ?? (x.info.stream ? SSE_HEADERS['content-type'] : 'application/json');
    return sendBody(res, fault.status ?? 200, { ...headers, ...fault.headers }, contentType, fault.rawBody);
  }

  const info: RequestInfo = { ...x.info, defaults };
  const endpoint = format.endpoint(info.method, info.path);
  if (!endpoint) return sendError(404, { message: `Invalid URL (${info.method} ${info.path})` });

  if (fault && isMalformedJson(fault)) {
    const text = JSON.stringify(endpoint.json(info));
    return sendJson(res, 200, headers, text.slice(0, Math.max(1, Math.floor(text.length / 2))));
  }

  if (info.stream && endpoint.stream) {
    const framing = wire.stream;
    res.writeHead(200, { ...(framing ? { 'content-type': framing.contentType } : SSE_HEADERS), ...headers });
    return driveStream(res, endpoint.stream(info), defaults.chunkDelayMs, fault, signal, framing?.encode);
  }

  const text = JSON.stringify(endpoint.json(info));
  if (fault && isStreamCut(fault)) {
    // Non-streaming equivalent of a cut: promise the whole body, deliver half, drop the connection.
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
    await writeThrough(res, text.slice(0, Math.floor(text.length / 2)), signal);
    res.socket?.destroy();
    return;
  }
  if (fault && isStreamError(fault)) {
    const status = fault.errorType === 'overloaded_error' ? 529 : 500;
    return sendError(status, { errorType: fault.errorType, message: fault.message });
  }
  return sendJson(res, 200, headers, text);
}

async function driveStream(
  res: ServerResponse,
  body: StreamBody,
  delayMs: number,
  fault: Fault | undefined,
  signal: AbortSignal,
  encode?: (sseFrames: string) => Buffer,
): Promise<void> {
  const w = new SseWriter(res, signal, encode);
  const cutAt = fault && isStreamCut(fault) ? fault.streamCutAfter : undefined;
  const errorAt = fault && isStreamError(fault) ? fault.streamErrorAfter : undefined;
  const stopAt = Math.min(body.count, cutAt ?? errorAt ?? Infinity);

  for (const frame of body.head()) await w.write(frame);
  await w.flush();
  for (let i = 0; i < stopAt; i++) {
    if (delayMs > 0) await sleep(delayMs, signal);
    if (w.aborted) return;
    await w.write(body.chunk(i));
    if (delayMs > 0) await w.flush();
  }
  if (w.aborted) return;

  if (cutAt !== undefined) {
    await w.flushThrough();
    res.socket?.destroy();
    return;
  }
  if (fault && isStreamError(fault)) {
    await w.write(body.error(fault.errorType, fault.message));
    return w.end();
  }
  for (const frame of body.tail()) await w.write(frame);
  return w.end();
}
