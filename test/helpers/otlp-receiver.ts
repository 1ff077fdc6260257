/**
 * A real OTLP/HTTP receiver for tests: POST /v1/traces and /v1/metrics, `application/x-protobuf` and
 * `application/json`, optionally gzip-encoded. Protobuf is decoded by protobufjs from the OTLP .proto
 * definitions below (the subset of opentelemetry-proto v1 the JS exporters send; unknown fields are
 * skipped by protobufjs). Both encodings end up in the same flat shape.
 *
 * Failure modes: `refuse` (the port is closed), `hang` (requests are read and never answered),
 * `{ status }` (answered with that HTTP status, optionally only `times` times).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { gunzipSync } from "node:zlib";
import protobuf from "protobufjs";

const OTLP_PROTO = `
syntax = "proto3";
package opentelemetry.proto;

message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope {
  string name = 1;
  string version = 2;
  repeated KeyValue attributes = 3;
  uint32 dropped_attributes_count = 4;
}
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }

message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  uint32 dropped_attributes_count = 10;
  repeated Event events = 11;
  uint32 dropped_events_count = 12;
  uint32 dropped_links_count = 14;
  Status status = 15;
  fixed32 flags = 16;
  message Event {
    fixed64 time_unix_nano = 1;
    string name = 2;
    repeated KeyValue attributes = 3;
    uint32 dropped_attributes_count = 4;
  }
}
message Status { string message = 2; int32 code = 3; }

message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; string schema_url = 3; }
message ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2; string schema_url = 3; }
message Metric {
  string name = 1;
  string description = 2;
  string unit = 3;
  oneof data {
    Gauge gauge = 5;
    Sum sum = 7;
    Histogram histogram = 9;
  }
}
message Gauge { repeated NumberDataPoint data_points = 1; }
message Sum { repeated NumberDataPoint data_points = 1; int32 aggregation_temporality = 2; bool is_monotonic = 3; }
message Histogram { repeated HistogramDataPoint data_points = 1; int32 aggregation_temporality = 2; }
message NumberDataPoint {
  repeated KeyValue attributes = 7;
  fixed64 start_time_unix_nano = 2;
  fixed64 time_unix_nano = 3;
  oneof value {
    double as_double = 4;
    sfixed64 as_int = 6;
  }
  uint32 flags = 8;
}
message HistogramDataPoint {
  repeated KeyValue attributes = 9;
  fixed64 start_time_unix_nano = 2;
  fixed64 time_unix_nano = 3;
  fixed64 count = 4;
  optional double sum = 5;
  repeated fixed64 bucket_counts = 6;
  repeated double explicit_bounds = 7;
  uint32 flags = 10;
  optional double min = 11;
  optional double max = 12;
}
`;

const root = protobuf.parse(OTLP_PROTO).root;
const TraceRequest = root.lookupType("opentelemetry.proto.ExportTraceServiceRequest");
const MetricsRequest = root.lookupType("opentelemetry.proto.ExportMetricsServiceRequest");
const TO_OBJECT: protobuf.IConversionOptions = { longs: String, bytes: String, enums: Number, defaults: false, oneofs: false };

/** OTLP SpanKind numbers: 1 INTERNAL, 2 SERVER, 3 CLIENT, 4 PRODUCER, 5 CONSUMER. */
export const OTLP_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

export type Attributes = Record<string, unknown>;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** "" for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Attributes;
  events: { name: string; attributes: Attributes }[];
  status: { code: number; message?: string };
  startNs: bigint;
  endNs: bigint;
  resource: Attributes;
  scope: string;
  /** "protobuf" | "json": how it arrived. */
  encoding: Encoding;
}

export interface ReceivedPoint {
  attributes: Attributes;
  /** Sum/gauge value, or a histogram's count. */
  value: number;
  sum?: number;
}

export interface ReceivedMetric {
  name: string;
  unit: string;
  type: "gauge" | "sum" | "histogram" | "other";
  points: ReceivedPoint[];
  resource: Attributes;
  scope: string;
  encoding: Encoding;
}

export type Encoding = "protobuf" | "json";

export interface ReceivedRequest {
  path: string;
  contentType: string;
  encoding: Encoding | "unknown";
  /** What we answered (0 when we did not answer). */
  status: number;
  at: number;
  error?: string;
}

export type ReceiverMode = "ok" | "refuse" | "hang" | { status: number; times?: number };

export interface OtlpReceiver {
  /** "http://127.0.0.1:PORT" — the value for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly url: string;
  readonly port: number;
  readonly spans: ReceivedSpan[];
  readonly metrics: ReceivedMetric[];
  readonly requests: ReceivedRequest[];
  /** Spans whose resource has this service.name. */
  spansOf(service: string): ReceivedSpan[];
  metricsOf(service: string): ReceivedMetric[];
  /** Resolves once `predicate` holds (checked on every received batch), rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  setMode(mode: ReceiverMode): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

function hexOf(base64OrHex: unknown): string {
  if (typeof base64OrHex !== "string" || base64OrHex === "") return "";
  if (/^[0-9a-f]+$/i.test(base64OrHex) && (base64OrHex.length === 16 || base64OrHex.length === 32)) {
    return base64OrHex.toLowerCase();
  }
  return Buffer.from(base64OrHex, "base64").toString("hex");
}

function anyValue(v: any): unknown {
  if (!v || typeof v !== "object") return undefined;
  if ("stringValue" in v) return v.stringValue;
  if ("boolValue" in v) return v.boolValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return Number(v.doubleValue);
  if ("arrayValue" in v) return (v.arrayValue?.values ?? []).map(anyValue);
  if ("kvlistValue" in v) return attrs(v.kvlistValue?.values);
  if ("bytesValue" in v) return v.bytesValue;
  return undefined;
}

function attrs(list: any[] | undefined): Attributes {
  const out: Attributes = {};
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

function flattenTraces(req: any, encoding: Encoding): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of req?.resourceSpans ?? []) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      const scope = ss.scope?.name ?? "";
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: hexOf(s.traceId),
          spanId: hexOf(s.spanId),
          parentSpanId: hexOf(s.parentSpanId),
          name: s.name ?? "",
          kind: Number(s.kind ?? 0),
          attributes: attrs(s.attributes),
          events: (s.events ?? []).map((e: any) => ({ name: e.name ?? "", attributes: attrs(e.attributes) })),
          status: { code: Number(s.status?.code ?? 0), ...(s.status?.message ? { message: s.status.message } : {}) },
          startNs: BigInt(s.startTimeUnixNano ?? 0),
          endNs: BigInt(s.endTimeUnixNano ?? 0),
          resource,
          scope,
          encoding,
        });
      }
    }
  }
  return out;
}

function flattenMetrics(req: any, encoding: Encoding): ReceivedMetric[] {
  const out: ReceivedMetric[] = [];
  for (const rm of req?.resourceMetrics ?? []) {
    const resource = attrs(rm.resource?.attributes);
    for (const sm of rm.scopeMetrics ?? []) {
      const scope = sm.scope?.name ?? "";
      for (const m of sm.metrics ?? []) {
        const type = m.gauge ? "gauge" : m.sum ? "sum" : m.histogram ? "histogram" : "other";
        const dps: any[] = (m.gauge ?? m.sum ?? m.histogram)?.dataPoints ?? [];
        out.push({
          name: m.name ?? "",
          unit: m.unit ?? "",
          type,
          points: dps.map((dp) => ({
            attributes: attrs(dp.attributes),
            value: type === "histogram" ? Number(dp.count ?? 0) : Number(dp.asDouble ?? dp.asInt ?? 0),
            ...(type === "histogram" && dp.sum !== undefined ? { sum: Number(dp.sum) } : {}),
          })),
          resource,
          scope,
          encoding,
        });
      }
    }
  }
  return out;
}

/** Decodes one export request body; exported for unit use. */
export function decodeExport(
  signal: "traces" | "metrics",
  body: Buffer,
  contentType: string,
): { encoding: Encoding; spans: ReceivedSpan[]; metrics: ReceivedMetric[] } {
  const isJson = /json/i.test(contentType);
  const encoding: Encoding = isJson ? "json" : "protobuf";
  let obj: any;
  if (isJson) obj = body.length ? JSON.parse(body.toString("utf8")) : {};
  else {
    const type = signal === "traces" ? TraceRequest : MetricsRequest;
    obj = type.toObject(type.decode(body), TO_OBJECT);
  }
  return signal === "traces"
    ? { encoding, spans: flattenTraces(obj, encoding), metrics: [] }
    : { encoding, spans: [], metrics: flattenMetrics(obj, encoding) };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.once("end", () => resolve(Buffer.concat(parts)));
    req.once("error", reject);
  });
}

export async function startOtlpReceiver(initial: ReceiverMode = "ok"): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const metrics: ReceivedMetric[] = [];
  const requests: ReceivedRequest[] = [];
  const sockets = new Set<Socket>();
  const waiters = new Set<() => void>();
  let mode: ReceiverMode = "ok";
  let answeredWithStatus = 0;
  let port = 0;
  let server: Server | undefined;

  const notify = () => {
    for (const w of [...waiters]) w();
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.on("error", () => {});
    res.on("error", () => {});
    const path = (req.url ?? "").split("?")[0]!;
    const contentType = String(req.headers["content-type"] ?? "");
    const record: ReceivedRequest = { path, contentType, encoding: "unknown", status: 0, at: Date.now() };
    requests.push(record);
    let raw: Buffer;
    try {
      raw = await readBody(req);
    } catch {
      return;
    }
    if (mode === "hang") return notify(); // never answered; the socket is destroyed on close()
    if (typeof mode === "object") {
      const times = mode.times ?? Infinity;
      if (answeredWithStatus < times) {
        answeredWithStatus++;
        record.status = mode.status;
        res.writeHead(mode.status, { "content-type": "text/plain" }).end("scripted failure");
        return notify();
      }
    }
    const signal = path === "/v1/traces" ? "traces" : path === "/v1/metrics" ? "metrics" : undefined;
    if (req.method !== "POST" || !signal) {
      record.status = 404;
      res.writeHead(404).end();
      return notify();
    }
    try {
      const body = /gzip/i.test(String(req.headers["content-encoding"] ?? "")) ? gunzipSync(raw) : raw;
      const decoded = decodeExport(signal, body, contentType);
      record.encoding = decoded.encoding;
      spans.push(...decoded.spans);
      metrics.push(...decoded.metrics);
      record.status = 200;
      if (decoded.encoding === "json") res.writeHead(200, { "content-type": "application/json" }).end("{}");
      else res.writeHead(200, { "content-type": "application/x-protobuf" }).end(); // an empty Export*ServiceResponse
    } catch (err) {
      record.status = 400;
      record.error = (err as Error).message;
      res.writeHead(400, { "content-type": "text/plain" }).end(String((err as Error).message));
    }
    notify();
  }

  async function listen(): Promise<void> {
    const s = createServer((req, res) => void handle(req, res));
    s.on("connection", (sock) => {
      sockets.add(sock);
      sock.once("close", () => sockets.delete(sock));
    });
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        s.off("error", reject);
        resolve();
      });
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  }

  async function stopListening(): Promise<void> {
    const s = server;
    server = undefined;
    if (!s) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const sock of sockets) sock.destroy();
    await closed;
  }

  await listen();

  const receiver: OtlpReceiver = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    spans,
    metrics,
    requests,
    spansOf: (service) => spans.filter((s) => s.resource["service.name"] === service),
    metricsOf: (service) => metrics.filter((m) => m.resource["service.name"] === service),
    waitFor(predicate, timeoutMs = 10_000, what = "condition") {
      if (predicate()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate()) return;
          done();
          resolve();
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`OTLP receiver: timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },
    async setMode(next) {
      const wasRefusing = mode === "refuse";
      mode = next;
      answeredWithStatus = 0;
      if (next === "refuse" && !wasRefusing) await stopListening();
      else if (next !== "refuse" && wasRefusing) await listen();
    },
    reset() {
      spans.length = 0;
      metrics.length = 0;
      requests.length = 0;
    },
    async close() {
      waiters.clear();
      await stopListening();
    },
  };
  await receiver.setMode(initial);
  return receiver;
}
