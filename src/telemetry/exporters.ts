import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConsoleMetricExporter, type MetricReader, PeriodicExportingMetricReader, type PushMetricExporter } from "@opentelemetry/sdk-metrics";
import { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { watchedAgent } from "./collector-watch.js";
import { lazyOtlpMetricExporter, lazySpanExporter } from "./lazy-exporters.js";
import { reportOnce } from "./logger.js";
import { SpanLedger } from "./span-ledger.js";

/**
 * The exporters the standard OTEL_* variables ask for, and only those. A push exporter's package is
 * checked at start-up and loaded at its first export (lazy-exporters.ts). The OTLP/HTTP ones
 * (http/protobuf, the default, and http/json) and Prometheus come with this package; gRPC and Zipkin
 * are optional peer dependencies, and asking for one that is not installed is said once, with the
 * command that installs it.
 */
type Env = NodeJS.ProcessEnv;
type Signal = "TRACES" | "METRICS";

const OTLP_PACKAGES: Record<Signal, Record<string, string>> = {
  TRACES: {
    "http/protobuf": "@opentelemetry/exporter-trace-otlp-proto",
    "http/json": "@opentelemetry/exporter-trace-otlp-http",
    grpc: "@opentelemetry/exporter-trace-otlp-grpc",
  },
  METRICS: {
    "http/protobuf": "@opentelemetry/exporter-metrics-otlp-proto",
    "http/json": "@opentelemetry/exporter-metrics-otlp-http",
    grpc: "@opentelemetry/exporter-metrics-otlp-grpc",
  },
};
const OTLP_PATHS: Record<Signal, string> = { TRACES: "v1/traces", METRICS: "v1/metrics" };
const ZIPKIN_PACKAGE = "@opentelemetry/exporter-zipkin";
const DEFAULT_METRIC_INTERVAL_MS = 60_000;
const DEFAULT_METRIC_TIMEOUT_MS = 30_000;
const OTLP_DEFAULT_TIMEOUT_MS = 10_000;

/** One span export pipeline; `ledger` counts what it could not send (not for the console). */
export interface SpanPipeline {
  processors: SpanProcessor[];
  ledger?: SpanLedger;
}

export function spanPipelinesFromEnv(env: Env = process.env): SpanPipeline[] {
  const names = exporterNames(env, "OTEL_TRACES_EXPORTER");
  const pipelines: SpanPipeline[] = [];
  for (const name of names) {
    if (name === "console") {
      pipelines.push({ processors: [new SimpleSpanProcessor(new ConsoleSpanExporter())] });
      continue;
    }
    let exporter: SpanExporter | undefined;
    let endpoint = "";
    if (name === "otlp") {
      const protocol = otlpProtocol(env, "TRACES");
      endpoint = otlpEndpoint(env, "TRACES", protocol);
      const create = otlpExporterFactory<SpanExporter>("TRACES", protocol, "OTLPTraceExporter", {});
      exporter = create && lazySpanExporter(create, `OTLP trace exporter (${OTLP_PACKAGES.TRACES[protocol]})`);
    } else if (name === "zipkin") {
      endpoint = env.OTEL_EXPORTER_ZIPKIN_ENDPOINT?.trim() || "http://localhost:9411/api/v2/spans";
      if (installed(ZIPKIN_PACKAGE, "OTEL_TRACES_EXPORTER=zipkin")) {
        const create = () => new (require(ZIPKIN_PACKAGE) as { ZipkinExporter: new () => SpanExporter }).ZipkinExporter();
        exporter = lazySpanExporter(create, `Zipkin exporter (${ZIPKIN_PACKAGE})`);
      }
    } else {
      reportOnce(`OTEL_TRACES_EXPORTER=${name} is not supported (use otlp, console, zipkin or none); no spans go there`);
    }
    if (!exporter) continue;
    const ledger = new SpanLedger(endpoint);
    pipelines.push({ processors: [ledger.counter, new BatchSpanProcessor(ledger.wrap(exporter))], ledger });
  }
  return pipelines;
}

export function metricReadersFromEnv(env: Env = process.env): MetricReader[] {
  const names = exporterNames(env, "OTEL_METRICS_EXPORTER");
  const interval = positiveNumber(env, "OTEL_METRIC_EXPORT_INTERVAL") ?? DEFAULT_METRIC_INTERVAL_MS;
  const timeout = Math.min(positiveNumber(env, "OTEL_METRIC_EXPORT_TIMEOUT") ?? DEFAULT_METRIC_TIMEOUT_MS, interval);
  const periodic = (exporter: PushMetricExporter) =>
    new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: interval, exportTimeoutMillis: timeout });
  const readers: MetricReader[] = [];
  for (const name of names) {
    if (name === "otlp") {
      const protocol = otlpProtocol(env, "METRICS");
      const create = otlpExporterFactory<PushMetricExporter>("METRICS", protocol, "OTLPMetricExporter", metricRequestTimeout(env, interval));
      if (create) readers.push(periodic(lazyOtlpMetricExporter(create, `OTLP metric exporter (${OTLP_PACKAGES.METRICS[protocol]})`, env)));
    } else if (name === "prometheus") {
      const { PrometheusExporter } = require("@opentelemetry/exporter-prometheus") as typeof import("@opentelemetry/exporter-prometheus");
      readers.push(new PrometheusExporter());
    } else if (name === "console") {
      readers.push(periodic(new ConsoleMetricExporter()));
    } else {
      reportOnce(`OTEL_METRICS_EXPORTER=${name} is not supported (use otlp, prometheus, console or none); no metrics go there`);
    }
  }
  return readers;
}

/** The exporters a list variable names: `otlp` when unset, none for `none`. */
function exporterNames(env: Env, variable: string): string[] {
  const names = [
    ...new Set(
      (env[variable] ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s && s !== "null"),
    ),
  ];
  if (names.length === 0) return ["otlp"];
  if (names.includes("none")) {
    if (names.length > 1) reportOnce(`${variable}=${env[variable]} mixes none with exporters; exporting nothing`);
    return [];
  }
  return names;
}

function otlpProtocol(env: Env, signal: Signal): string {
  const variable = env[`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`]?.trim() ? `OTEL_EXPORTER_OTLP_${signal}_PROTOCOL` : "OTEL_EXPORTER_OTLP_PROTOCOL";
  const protocol = env[variable]?.trim() || "http/protobuf";
  if (protocol in OTLP_PACKAGES[signal]) return protocol;
  reportOnce(`${variable}=${protocol} is not an OTLP protocol (use http/protobuf, http/json or grpc); using http/protobuf`);
  return "http/protobuf";
}

/** Where the exporter sends, as the exporters work it out from the variables (for messages only). */
function otlpEndpoint(env: Env, signal: Signal, protocol: string): string {
  const own = env[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`]?.trim();
  if (own) return own;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || (protocol === "grpc" ? "http://localhost:4317" : "http://localhost:4318");
  return protocol === "grpc" ? base : `${base.replace(/\/+$/, "")}/${OTLP_PATHS[signal]}`;
}

/** Creates the OTLP exporter of a signal (when its package is installed, else said once). */
function otlpExporterFactory<T>(signal: Signal, protocol: string, className: string, config: Record<string, unknown>): (() => T) | undefined {
  const pkg = OTLP_PACKAGES[signal][protocol];
  if (!installed(pkg, `OTEL_EXPORTER_OTLP_PROTOCOL=${protocol}`)) return undefined;
  return () => {
    const Exporter = (require(pkg) as Record<string, new (config: Record<string, unknown>) => T>)[className];
    return new Exporter(protocol === "grpc" ? config : { ...config, httpAgentOptions: watchedAgent });
  };
}

/**
 * With a metric export interval at or below the OTLP request timeout (10 s unless set), failing
 * periodic exports overlap: a hanging or refusing collector then keeps a request pending at every
 * moment, the event loop never drains, and a process whose work is done never reaches beforeExit.
 * The metric reader gives up on an export after one interval anyway, so unless the user set a
 * metrics-specific timeout, each metrics request is kept shorter than the interval.
 */
function metricRequestTimeout(env: Env, interval: number): { timeoutMillis?: number } {
  if (env.OTEL_EXPORTER_OTLP_METRICS_TIMEOUT?.trim()) return {};
  const timeout = positiveNumber(env, "OTEL_EXPORTER_OTLP_TIMEOUT") ?? OTLP_DEFAULT_TIMEOUT_MS;
  const bound = Math.max(1, Math.floor(interval * 0.8));
  return bound < timeout ? { timeoutMillis: bound } : {};
}

function positiveNumber(env: Env, variable: string): number | undefined {
  const raw = env[variable]?.trim();
  if (!raw) return undefined;
  const n = Number(raw);
  if (Number.isFinite(n) && n > 0) return n;
  reportOnce(`${variable}=${raw} is not a positive number of milliseconds; using the default`);
  return undefined;
}

/** Whether an exporter package can be loaded; one that is not installed is said once, with its install command. */
function installed(pkg: string, setting: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    reportOnce(`${setting} needs ${pkg}, which is not installed: npm install ${pkg}@${peerRange(pkg)}`);
    return false;
  }
}

/** The version range this package declares for an optional exporter (its peerDependencies). */
function peerRange(pkg: string): string {
  try {
    const manifest = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
    return manifest.peerDependencies?.[pkg] ?? "*";
  } catch {
    return "*";
  }
}
