/**
 * The conformance suite's provider: a loopback HTTP server that answers each request with the next
 * step of the current scenario's script (then plain successes) and records what it received. It
 * speaks just enough of both wire formats (chat completions, responses, messages; JSON and SSE)
 * and plays the faults the SDKs' retry loops react to: statuses with headers, a hang before the
 * headers, a reset, a body that stalls or breaks after the headers, a stream cut before its first event.
 * Deterministic: ids and texts are numbered by request, so both sides of a comparison see the same bytes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export type Step =
  | { ok: true; headers?: Record<string, string> }
  | { status: number; headers?: Record<string, string>; errorType?: string }
  | { hang: true }
  | { reset: true }
  /** 200 with its headers and half the JSON body, the rest after `ms` (if the client is still there). */
  | { stallBodyMs: number }
  /** 200 with its headers and half the JSON body, then the connection is destroyed. */
  | { cutBody: true }
  /** An SSE response whose connection is destroyed before its first event. */
  | { cutStreamBeforeFirstEvent: true };

export interface SeenRequest {
  method: string;
  path: string;
  /** Lower-cased names; connection-level headers left out. */
  headers: Record<string, string>;
  /** Parsed JSON, else the raw text ("" when empty). */
  body: unknown;
  /** ms since the scenario started. */
  at: number;
}

/** Transport headers that differ between two runs for reasons unrelated to the SDK. */
const TRANSPORT_HEADERS = new Set(["host", "connection", "content-length", "transfer-encoding", "keep-alive"]);

export interface ConformanceServer {
  readonly url: string;
  /** Starts a scenario: its script, an empty request log, its clock. */
  begin(script: Step[]): void;
  readonly requests: SeenRequest[];
  /** ms since the scenario started. */
  now(): number;
  close(): Promise<void>;
}

export async function startServer(): Promise<ConformanceServer> {
  let script: Step[] = [];
  let started = performance.now();
  let requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("error", () => {});
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown = text;
      try {
        body = text === "" ? "" : JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (!TRANSPORT_HEADERS.has(k) && v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
      }
      requests.push({ method: req.method ?? "", path: (req.url ?? "").split("?")[0]!, headers, body, at: Math.round(performance.now() - started) });
      const n = requests.length;
      answer(req, res, script[n - 1] ?? { ok: true }, n, body);
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  function answer(req: IncomingMessage, res: ServerResponse, step: Step, n: number, body: any): void {
    const path = (req.url ?? "").split("?")[0]!;
    const anthropic = path.endsWith("/messages");
    const ids = { [anthropic ? "request-id" : "x-request-id"]: `req_${n}` };
    const model = typeof body?.model === "string" ? body.model : "unknown";
    if ("hang" in step) return; // answered never; the client gives up (timeout, abort) or the server closes
    if ("reset" in step) {
      req.socket.destroy();
      return;
    }
    if ("status" in step) {
      const type = step.errorType ?? errorTypeFor(step.status);
      const payload = anthropic
        ? { type: "error", error: { type, message: `conformance ${step.status}` } }
        : { error: { message: `conformance ${step.status}`, type, code: null, param: null } };
      res.writeHead(step.status, { "content-type": "application/json", ...ids, ...step.headers });
      res.end(JSON.stringify(payload));
      return;
    }
    if ("cutStreamBeforeFirstEvent" in step) {
      res.writeHead(200, { "content-type": "text/event-stream", ...ids });
      res.flushHeaders();
      later(10, () => req.socket.destroy());
      return;
    }
    if (body?.stream === true) {
      res.writeHead(200, { "content-type": "text/event-stream", ...ids, ...("headers" in step ? step.headers : undefined) });
      res.end(sse(path, model, n));
      return;
    }
    const json = JSON.stringify(success(path, model, n));
    const head = { "content-type": "application/json", "content-length": String(Buffer.byteLength(json)), ...ids };
    if ("stallBodyMs" in step || "cutBody" in step) {
      res.writeHead(200, head);
      res.write(json.slice(0, json.length >> 1));
      if ("cutBody" in step) later(10, () => req.socket.destroy());
      else later(step.stallBodyMs, () => res.writableEnded || res.destroyed || res.end(json.slice(json.length >> 1)));
      return;
    }
    res.writeHead(200, { ...head, ...step.headers });
    res.end(json);
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    begin(s) {
      script = s;
      requests = [];
      started = performance.now();
    },
    get requests() {
      return requests;
    },
    now: () => performance.now() - started,
    close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function errorTypeFor(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 429) return "rate_limit_error";
  if (status === 529) return "overloaded_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

const CREATED = 1_700_000_000;

function success(path: string, model: string, n: number): unknown {
  const text = `answer ${n}`;
  if (path.endsWith("/messages")) {
    return {
      id: `msg_${n}`,
      type: "message",
      role: "assistant",
      model,
      content: [{ type: "text", text }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: 11, output_tokens: 7 },
    };
  }
  if (path.endsWith("/responses")) {
    return {
      id: `resp_${n}`,
      object: "response",
      created_at: CREATED,
      model,
      status: "completed",
      output: [
        { type: "message", id: `msg_${n}`, status: "completed", role: "assistant", content: [{ type: "output_text", text, annotations: [] }] },
      ],
      usage: { input_tokens: 11, output_tokens: 7, total_tokens: 18 },
    };
  }
  return {
    id: `chatcmpl-${n}`,
    object: "chat.completion",
    created: CREATED,
    model,
    choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop", logprobs: null }],
    usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 },
  };
}

const data = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`;
const event = (name: string, payload: unknown) => `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;

function sse(path: string, model: string, n: number): string {
  if (path.endsWith("/messages")) {
    return [
      event("message_start", {
        type: "message_start",
        message: {
          id: `msg_${n}`,
          type: "message",
          role: "assistant",
          model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: 11, output_tokens: 1 },
        },
      }),
      event("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
      event("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "answer " } }),
      event("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: String(n) } }),
      event("content_block_stop", { type: "content_block_stop", index: 0 }),
      event("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 7 } }),
      event("message_stop", { type: "message_stop" }),
    ].join("");
  }
  const chunk = (delta: unknown, finish: string | null) => ({
    id: `chatcmpl-${n}`,
    object: "chat.completion.chunk",
    created: CREATED,
    model,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
  });
  return [
    data(chunk({ role: "assistant", content: "" }, null)),
    data(chunk({ content: "answer " }, null)),
    data(chunk({ content: String(n) }, null)),
    data(chunk({}, "stop")),
    "data: [DONE]\n\n",
  ].join("");
}
