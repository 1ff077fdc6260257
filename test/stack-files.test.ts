// Static checks of the observability stack files: docker-compose.yml, collector-config.yaml,
// deploy/prometheus/*, deploy/grafana/*, deploy/README-snippet.md.
// Run: node --import tsx --test test/stack-files.test.ts
//
// Metric and label names are not hard-coded here: the test records every instrument of the
// contract (design.md) with the installed @opentelemetry/sdk-metrics + exporter-prometheus and
// takes the names from the serialized scrape text, so rules and dashboard are checked against
// what Prometheus really receives from the app's own exporter (OTEL_METRICS_EXPORTER=prometheus).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { parse as parseYaml } from "yaml";
import { METRIC } from "../src/telemetry/semconv.js";

const ROOT = path.resolve(__dirname, "..");
const rel = (p: string) => path.join(ROOT, p);
const read = (p: string) => readFileSync(rel(p), "utf8");
const yamlFile = (p: string): any => parseYaml(read(p));

const compose = yamlFile("docker-compose.yml");
const collector = yamlFile("collector-config.yaml");
const promConfig = yamlFile("deploy/prometheus/prometheus.yml");
const alerts = yamlFile("deploy/prometheus/alerts.yml");
const alertTests = yamlFile("deploy/prometheus/alerts.test.yml");
const snippet = read("deploy/README-snippet.md");
const builder = yamlFile("deploy/stack/otelcol-builder.yaml");
const jaegerConfig = yamlFile("deploy/jaeger/config.yaml");
/** deploy/stack/versions.env as a map (KEY=value lines). */
const versions = Object.fromEntries(
  read("deploy/stack/versions.env")
    .split("\n")
    .map((l) => /^([A-Z_]+)=(\S+)/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1], m[2]]),
);
const DASHBOARD = "deploy/grafana/dashboards/llm-resilience.json";

// ----------------------------------------------------------------------------- helpers

/** "HOST:PORT" or ":PORT" or "${env:X:-HOST:PORT}" -> { host, port } */
/** "${env:X:-DEFAULT}" -> DEFAULT (what the container gets); anything else as it is. */
function envDefault(value: string | number): string {
  const m = /^\$\{env:[A-Z0-9_]+:-(.*)\}$/.exec(String(value));
  return m ? m[1] : String(value);
}

function hostPort(endpoint: string): { host: string; port: number } {
  const s = envDefault(endpoint);
  const i = s.lastIndexOf(":");
  assert.ok(i >= 0, `no port in endpoint ${endpoint}`);
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/** compose "HOST:CONTAINER" port strings of a service -> Map(container port -> host port) */
function publishedPorts(service: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const p of compose.services[service].ports ?? []) {
    const parts = String(p).split("/")[0].split(":");
    assert.ok(parts.length >= 2, `${service}: port "${p}" should be HOST:CONTAINER`);
    out.set(Number(parts[parts.length - 1]), Number(parts[parts.length - 2]));
  }
  return out;
}

/** bind mounts of a service: [{ source (repo-relative), target }] */
function bindMounts(service: string): { source: string; target: string }[] {
  const out: { source: string; target: string }[] = [];
  for (const v of compose.services[service].volumes ?? []) {
    if (typeof v === "string") {
      const [source, target] = v.split(":");
      if (source.startsWith(".") || source.startsWith("/")) out.push({ source, target });
    } else if (v.type === "bind") {
      out.push({ source: v.source, target: v.target });
    }
  }
  return out;
}

/** A job's targets as compose sees them: its file_sd files, relative to prometheus.yml. */
function scrapeTargets(job: string): { host: string; port: number }[] {
  const sc = promConfig.scrape_configs.find((s: any) => s.job_name === job);
  assert.ok(sc, `prometheus.yml has no job ${job}`);
  assert.equal(sc.static_configs, undefined, `${job}: targets belong in file_sd files (scripts/stack.sh writes its own)`);
  const files: string[] = sc.file_sd_configs.flatMap((c: any) => c.files);
  return files.flatMap((f) => yamlFile(path.join("deploy/prometheus", f)).flatMap((g: any) => g.targets.map((t: string) => hostPort(t))));
}

// ----------------------------------------------------------------------------- the real names

type Scrape = { metrics: Set<string>; labels: Set<string>; text: string };
let scrapeCache: Promise<Scrape> | undefined;

/** Records each contract instrument with its attributes and serializes like the app's exporter. */
function realScrape(): Promise<Scrape> {
  scrapeCache ??= (async () => {
    const exporter = new PrometheusExporter({ preventServerStart: true });
    const provider = new MeterProvider({ readers: [exporter] });
    const meter = provider.getMeter("llm-resilience");
    const base = {
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": "openai",
      "gen_ai.request.model": "gpt-4o-mini",
      "server.address": "api.openai.com",
    };
    const failed = { ...base, "error.type": "rate_limit_error" };
    const breaker = { "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", "llm_resilience.breaker.key": "openai:gpt-4o-mini" };

    const duration = meter.createHistogram("gen_ai.client.operation.duration", { unit: "s" });
    duration.record(1.2, base);
    duration.record(0.3, failed);
    const tokens = meter.createHistogram("gen_ai.client.token.usage", { unit: "{token}" });
    tokens.record(11, { ...base, "gen_ai.token.type": "input" });
    tokens.record(7, { ...base, "gen_ai.token.type": "output" });
    meter.createHistogram("gen_ai.client.operation.time_to_first_chunk", { unit: "s" }).record(0.2, base);
    const attempts = meter.createCounter("llm_resilience.attempts");
    attempts.add(1, failed);
    attempts.add(1, base);
    meter.createCounter("llm_resilience.retries").add(1, failed);
    meter
      .createCounter("llm_resilience.breaker.transitions")
      .add(1, { ...breaker, "llm_resilience.breaker.from": "closed", "llm_resilience.breaker.to": "open" });
    meter
      .createCounter("llm_resilience.breaker.rejections")
      .add(1, { ...base, "llm_resilience.breaker.key": "openai:gpt-4o-mini", "error.type": "breaker_open" });
    meter
      .createCounter("llm_resilience.fallbacks")
      .add(1, { ...base, "llm_resilience.fallback.to": "gpt-4o", "llm_resilience.fallback.reason": "breaker_open" });
    meter.createObservableGauge("llm_resilience.breaker.state").addCallback((r) => r.observe(2, breaker));
    const cost = meter.createCounter("llm_resilience.cost", { unit: "{USD}" });
    cost.add(0.0021, { ...base, "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.token.type": "input" });
    cost.add(0.0042, { ...base, "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.token.type": "output" });
    meter.createCounter("llm_resilience.spend.rejections").add(1, base);

    const { resourceMetrics, errors } = await exporter.collect();
    assert.deepEqual(errors, []);
    const text = new PrometheusSerializer().serialize(resourceMetrics);
    await provider.shutdown();

    const metrics = new Set<string>();
    const labels = new Set<string>();
    for (const line of text.split("\n")) {
      if (!line || line.startsWith("#")) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
      assert.ok(m, `unparsable scrape line: ${line}`);
      metrics.add(m[1]);
      for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1]);
    }
    return { metrics, labels, text };
  })();
  return scrapeCache;
}

// Words of PromQL (functions, aggregations, keywords) that may appear in expressions.
const PROMQL_WORDS = new Set(
  (
    "sum min max avg count stddev stdvar topk bottomk quantile group count_values by without on ignoring " +
    "group_left group_right and or unless bool offset rate irate increase delta idelta deriv histogram_quantile " +
    "max_over_time min_over_time avg_over_time sum_over_time count_over_time last_over_time absent absent_over_time " +
    "vector scalar clamp_min clamp_max clamp abs ceil floor round label_replace label_join time timestamp sort sort_desc " +
    "label_values inf nan"
  ).split(" "),
);
// Labels Prometheus itself attaches.
const PROMETHEUS_LABELS = new Set(["job", "instance", "le", "__name__"]);

/** Identifiers of a PromQL expression (string literals, durations, numbers, Grafana variables removed). */
function identifiers(expr: string): string[] {
  const cleaned = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\$\{?[a-zA-Z_]+\}?/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi, " ");
  return [...cleaned.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((w) => !PROMQL_WORDS.has(w.toLowerCase()));
}

/** Metric names in an expression; fails on any name that is neither a real metric nor a real label. */
function checkExpr(where: string, expr: string, real: Scrape): string[] {
  const used: string[] = [];
  for (const id of identifiers(expr)) {
    if (real.metrics.has(id)) used.push(id);
    else
      assert.ok(
        real.labels.has(id) || PROMETHEUS_LABELS.has(id),
        `${where}: "${id}" is neither a metric nor a label the app's Prometheus exporter writes.\n  expr: ${expr}\n  metrics: ${[...real.metrics].join(", ")}`,
      );
  }
  return used;
}

/** Instrument names the probe in realScrape() records: the contract's, as src/telemetry/semconv.ts spells them. */
const CONTRACT_INSTRUMENTS = [
  "gen_ai.client.operation.duration",
  "gen_ai.client.token.usage",
  "gen_ai.client.operation.time_to_first_chunk",
  "llm_resilience.attempts",
  "llm_resilience.retries",
  "llm_resilience.breaker.state",
  "llm_resilience.breaker.transitions",
  "llm_resilience.breaker.rejections",
  "llm_resilience.fallbacks",
  "llm_resilience.cost",
  "llm_resilience.spend.rejections",
];

const CONTRACT_METRICS = [
  "gen_ai_client_operation_duration_bucket",
  "gen_ai_client_operation_duration_count",
  "gen_ai_client_operation_duration_sum",
  "gen_ai_client_token_usage_bucket",
  "gen_ai_client_token_usage_sum",
  "gen_ai_client_operation_time_to_first_chunk_bucket",
  "llm_resilience_attempts_total",
  "llm_resilience_retries_total",
  "llm_resilience_breaker_state",
  "llm_resilience_breaker_transitions_total",
  "llm_resilience_breaker_rejections_total",
  "llm_resilience_fallbacks_total",
  "llm_resilience_cost_total",
  "llm_resilience_spend_rejections_total",
];

// ----------------------------------------------------------------------------- tests

test("the installed Prometheus exporter writes the names this stack is built on", async () => {
  const libraryNames = new Set<string>(Object.values(METRIC));
  for (const name of CONTRACT_INSTRUMENTS) assert.ok(libraryNames.has(name), `src/telemetry/semconv.ts has no metric ${name}`);
  const real = await realScrape();
  for (const name of CONTRACT_METRICS) assert.ok(real.metrics.has(name), `scrape lacks ${name}:\n${real.text}`);
  for (const label of [
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "error_type",
    "gen_ai_token_type",
    "llm_resilience_breaker_key",
    "llm_resilience_breaker_to",
    "llm_resilience_fallback_to",
    "llm_resilience_fallback_reason",
  ])
    assert.ok(real.labels.has(label), `scrape lacks label ${label}`);
  // no unit suffix from this exporter (the collector's adds "_seconds"; prometheus.yml renames it back)
  assert.ok(
    ![...real.metrics].some((m) => m.includes("_seconds")),
    "app exporter now adds unit suffixes: update prometheus.yml relabeling, alerts and dashboard",
  );
});

test("docker-compose.yml parses, pins every image and mounts only files that exist", () => {
  for (const name of ["otel-collector", "jaeger", "prometheus", "grafana"]) assert.ok(compose.services?.[name], `service ${name} missing`);
  for (const [name, svc] of Object.entries<any>(compose.services)) {
    const m = /^[^:@\s]+:([^:@\s]+)$/.exec(svc.image ?? "");
    assert.ok(m, `${name}: image "${svc.image}" has no tag`);
    assert.ok(/\d/.test(m[1]) && !/latest/i.test(m[1]), `${name}: image tag "${m[1]}" is not a pinned version`);
    for (const { source, target } of bindMounts(name)) {
      assert.ok(existsSync(rel(source)), `${name}: mounted ${source} (-> ${target}) does not exist`);
    }
  }
  assert.match(compose.services["otel-collector"].image, /^otel\/opentelemetry-collector-contrib:/);
});

test("the native build and compose run one collector and one Jaeger release; the build has exactly the config's components", () => {
  const version = versions.OTELCOL_VERSION;
  assert.match(version ?? "", /^\d+\.\d+\.\d+$/, "deploy/stack/versions.env: OTELCOL_VERSION");
  assert.equal(builder.dist.version, version, "otelcol-builder.yaml dist.version");
  assert.equal(
    compose.services["otel-collector"].image,
    `otel/opentelemetry-collector-contrib:${version}`,
    "compose pins another collector than the native build",
  );
  assert.equal(compose.services.jaeger.image, `jaegertracing/jaeger:${versions.JAEGER_VERSION}`, "compose pins another Jaeger than the native build");
  // Jaeger's module tags v1.N go with program release v2.(N-63) (v1.63.0 was v2.0.0).
  const [, minor] = /^v1\.(\d+)\.0$/.exec(versions.JAEGER_MODULE_VERSION ?? "") ?? [];
  assert.equal(versions.JAEGER_VERSION, `2.${Number(minor) - 63}.0`, "JAEGER_MODULE_VERSION and JAEGER_VERSION are one release");

  // One release for every module: components at v<version>, confmap providers at one v1.x.
  const modules = new Map<string, Set<string>>();
  for (const [section, kind] of Object.entries({
    extensions: "extension",
    receivers: "receiver",
    processors: "processor",
    exporters: "exporter",
    connectors: "connector",
    providers: "provider",
  })) {
    for (const { gomod } of builder[section] ?? []) {
      const [mod, v] = gomod.split(" ");
      if (kind === "provider") assert.match(v, /^v1\.\d+\.\d+$/, gomod);
      else assert.equal(v, `v${version}`, `${gomod}: not at the collector release v${version}`);
      (modules.get(kind) ?? modules.set(kind, new Set()).get(kind)!).add(mod.split("/").pop()!);
    }
  }
  const providerVersions = new Set((builder.providers ?? []).map((p: any) => p.gomod.split(" ")[1]));
  assert.equal(providerVersions.size, 1, "confmap providers at one version");
  // A config type maps to its module as "<type without _><kind>"; the OTLP gRPC exporter's type
  // (otlp_grpc since v0.14x, "otlp" is a deprecated alias) lives in module otlpexporter.
  const MODULE_OF_TYPE: Record<string, string> = { otlp_grpc: "otlpexporter" };
  const moduleOf = (kind: string, id: string) => {
    const type = id.split("/")[0];
    return MODULE_OF_TYPE[type] ?? type.replace(/_/g, "") + kind;
  };
  const used = new Set<string>();
  const exists = (kind: string, id: string) => {
    used.add(`${kind} ${moduleOf(kind, id)}`);
    return modules.get(kind)?.has(moduleOf(kind, id)) ?? false;
  };

  const kinds: Record<string, string> = { receivers: "receiver", processors: "processor", exporters: "exporter", connectors: "connector" };
  const pipelines = collector.service?.pipelines ?? {};
  assert.ok(pipelines.traces && pipelines.metrics, "traces and metrics pipelines expected");
  for (const [pname, p] of Object.entries<any>(pipelines)) {
    for (const [section, kind] of Object.entries(kinds)) {
      for (const id of p[section] ?? []) {
        assert.ok(collector[section] && id in collector[section], `pipeline ${pname}: ${section.slice(0, -1)} "${id}" is not declared`);
        assert.ok(exists(kind, id), `pipeline ${pname}: ${kind} "${id}" is not in deploy/stack/otelcol-builder.yaml`);
      }
    }
  }
  for (const id of collector.service?.extensions ?? []) {
    assert.ok(collector.extensions && id in collector.extensions, `extension "${id}" is not declared`);
    assert.ok(exists("extension", id), `extension "${id}" is not in deploy/stack/otelcol-builder.yaml`);
  }
  for (const section of Object.keys(kinds)) {
    for (const id of Object.keys(collector[section] ?? {}))
      assert.ok(exists(kinds[section], id), `${section}: "${id}" is not in deploy/stack/otelcol-builder.yaml`);
  }
  for (const [kind, names] of modules)
    if (kind !== "provider")
      for (const m of names)
        assert.ok(used.has(`${kind} ${m}`), `otelcol-builder.yaml builds ${kind} ${m}, which collector-config.yaml does not use`);
  // the pipelines the stack relies on
  assert.deepEqual(pipelines.traces.receivers, ["otlp"]);
  assert.equal(pipelines.traces.processors[0], "memory_limiter", "memory_limiter must come first");
  assert.equal(pipelines.metrics.processors[0], "memory_limiter", "memory_limiter must come first");
  assert.ok(pipelines.traces.processors.includes("batch") && pipelines.metrics.processors.includes("batch"));
  assert.ok(pipelines.metrics.exporters.includes("prometheus"));
  assert.ok(
    pipelines.traces.exporters.some((e: string) => e.split("/")[0] === "otlp_grpc"),
    "traces go to Jaeger via OTLP gRPC",
  );
  assert.ok(collector.exporters.debug, "debug exporter declared");
});

test("tail sampling keeps errors, retries and fallbacks by the contract's names", () => {
  const ts = collector.processors.tail_sampling;
  assert.ok(ts, "tail_sampling processor expected");
  const text = JSON.stringify(ts.policies);
  assert.ok(ts.policies.some((p: any) => p.type === "status_code" && p.status_code.status_codes.includes("ERROR")));
  assert.ok(
    ts.policies.some(
      (p: any) => p.type === "numeric_attribute" && p.numeric_attribute.key === "llm_resilience.attempts" && p.numeric_attribute.min_value === 2,
    ),
  );
  for (const event of ["llm_resilience.retry", "llm_resilience.fallback"])
    assert.ok(text.includes(`name == \\"${event}\\"`), `no policy for event ${event}`);
  assert.ok(ts.policies.some((p: any) => p.type === "probabilistic"));
});

test("ports agree between compose, collector, Prometheus, Grafana and the README snippet", () => {
  const col = publishedPorts("otel-collector");
  const grpc = hostPort(collector.receivers.otlp.protocols.grpc.endpoint);
  const http = hostPort(collector.receivers.otlp.protocols.http.endpoint);
  assert.deepEqual([grpc.host, grpc.port, http.host, http.port], ["0.0.0.0", 4317, "0.0.0.0", 4318]);
  assert.equal(col.get(4317), 4317, "compose publishes OTLP gRPC 4317");
  assert.equal(col.get(4318), 4318, "compose publishes OTLP HTTP 4318");

  // collector prometheus exporter <-> Prometheus scrape target
  const promExp = hostPort(collector.exporters.prometheus.endpoint);
  assert.equal(promExp.host, "0.0.0.0");
  assert.deepEqual(scrapeTargets("otel-collector"), [{ host: "otel-collector", port: promExp.port }]);
  assert.equal(col.get(promExp.port), promExp.port);
  // collector internal telemetry <-> scrape target
  const internal = collector.service.telemetry.metrics.readers[0].pull.exporter.prometheus;
  assert.equal(envDefault(internal.host), "0.0.0.0");
  assert.deepEqual(scrapeTargets("otel-collector-internal"), [{ host: "otel-collector", port: Number(envDefault(internal.port)) }]);
  // health_check
  assert.equal(col.get(hostPort(collector.extensions.health_check.endpoint).port), 13133);

  // the app's own exporter: default port of the installed @opentelemetry/exporter-prometheus
  const appPort = (PrometheusExporter as any).DEFAULT_OPTIONS.port as number;
  assert.deepEqual(scrapeTargets("llm-app"), [{ host: "host.docker.internal", port: appPort }]);
  assert.ok(
    (compose.services.prometheus.extra_hosts ?? []).some((h: string) => h.startsWith("host.docker.internal:")),
    "prometheus needs host.docker.internal to scrape the app on the host",
  );

  // traces: collector -> jaeger service's OTLP gRPC port
  const jaegerEp = hostPort(collector.exporters["otlp_grpc/jaeger"].endpoint);
  assert.deepEqual(jaegerEp, { host: "jaeger", port: 4317 });
  assert.deepEqual(
    hostPort(jaegerConfig.receivers.otlp.protocols.grpc.endpoint),
    { host: "0.0.0.0", port: 4317 },
    "Jaeger listens where the collector sends",
  );
  assert.deepEqual(hostPort(jaegerConfig.extensions.jaeger_query.http.endpoint), { host: "0.0.0.0", port: 16686 });
  const jaegerMount = bindMounts("jaeger").find((m) => m.source === "./deploy/jaeger/config.yaml");
  assert.ok(jaegerMount, "compose mounts deploy/jaeger/config.yaml");
  assert.deepEqual(compose.services.jaeger.command, [`--config=${jaegerMount.target}`]);
  assert.equal(compose.services["otel-collector"].environment.JAEGER_OTLP_ENDPOINT, "jaeger:4317");
  assert.ok(compose.services.jaeger, "jaeger service");
  assert.equal(publishedPorts("jaeger").get(16686), 16686, "Jaeger UI on 16686");
  assert.equal(publishedPorts("prometheus").get(9090), 9090, "Prometheus UI on 9090");
  assert.equal(publishedPorts("grafana").get(3000), 3000, "Grafana on 3000");
  assert.deepEqual(scrapeTargets("prometheus"), [{ host: "localhost", port: 9090 }]);

  // Grafana data sources point at the compose services
  const ds = yamlFile("deploy/grafana/provisioning/datasources/datasources.yml").datasources;
  assert.equal(ds.find((d: any) => d.type === "prometheus").url, "http://prometheus:9090");
  assert.equal(ds.find((d: any) => d.type === "jaeger").url, "http://jaeger:16686");

  // the README snippet tells the same ports
  for (const s of ["localhost:16686", "localhost:9090", "localhost:3000", "localhost:4317", "localhost:4318", ":8889", ":9464"])
    assert.ok(snippet.includes(s), `deploy/README-snippet.md does not mention ${s}`);
});

test("Prometheus loads alerts.yml by a path valid in the container and in the repository", () => {
  const configMount = bindMounts("prometheus").find((m) => m.source === "./deploy/prometheus/prometheus.yml");
  assert.ok(configMount, "prometheus.yml mounted");
  assert.ok(compose.services.prometheus.command.includes(`--config.file=${configMount.target}`));
  assert.ok(promConfig.rule_files.length > 0);
  for (const r of promConfig.rule_files) {
    assert.ok(!path.isAbsolute(r), `rule file ${r} should be relative to prometheus.yml`);
    assert.ok(existsSync(rel(path.join("deploy/prometheus", r))), `rule file ${r} missing next to prometheus.yml`);
    const inContainer = path.posix.join(path.posix.dirname(configMount.target), r);
    assert.ok(
      bindMounts("prometheus").some((m) => m.target === inContainer && path.normalize(m.source) === path.normalize("./deploy/prometheus/" + r)),
      `compose must mount deploy/prometheus/${r} at ${inContainer}`,
    );
  }
  // scrape targets: file_sd files next to prometheus.yml, mounted next to it in the container
  for (const sc of promConfig.scrape_configs) {
    for (const f of sc.file_sd_configs.flatMap((c: any) => c.files)) {
      assert.ok(!path.isAbsolute(f) && existsSync(rel(path.join("deploy/prometheus", f))), `${sc.job_name}: ${f} missing next to prometheus.yml`);
      const dir = path.posix.dirname(f);
      assert.ok(
        bindMounts("prometheus").some(
          (m) =>
            m.target === path.posix.join(path.posix.dirname(configMount.target), dir) &&
            path.normalize(m.source) === path.normalize(`./deploy/prometheus/${dir}`),
        ),
        `compose must mount deploy/prometheus/${dir} next to prometheus.yml`,
      );
    }
  }
  // the collector path is renamed to the app exporter's names
  const relabel = promConfig.scrape_configs.find((s: any) => s.job_name === "otel-collector").metric_relabel_configs;
  const rx = new RegExp(`^(?:${relabel[0].regex})$`);
  const renamed = (name: string) => name.replace(rx, relabel[0].replacement.replace(/\$\{(\d)\}/g, "$$$1"));
  assert.equal(renamed("gen_ai_client_operation_duration_seconds_bucket"), "gen_ai_client_operation_duration_bucket");
  assert.equal(renamed("gen_ai_client_operation_duration_seconds_count"), "gen_ai_client_operation_duration_count");
  assert.equal(renamed("gen_ai_client_operation_time_to_first_chunk_seconds_sum"), "gen_ai_client_operation_time_to_first_chunk_sum");
  assert.equal(renamed("gen_ai_client_token_usage_bucket"), "gen_ai_client_token_usage_bucket");
});

test("alert rules are complete, use real metric names and each has firing and not-firing tests", async () => {
  const real = await realScrape();
  const rules = alerts.groups.flatMap((g: any) => g.rules);
  const used = new Set<string>();
  for (const r of rules) {
    assert.ok(r.alert, "only alerting rules expected");
    assert.ok(r.for, `${r.alert}: no for:`);
    assert.ok(["critical", "warning", "info"].includes(r.labels?.severity), `${r.alert}: severity label`);
    for (const a of ["summary", "description", "runbook"]) assert.ok(r.annotations?.[a], `${r.alert}: no ${a} annotation`);
    for (const m of checkExpr(`alert ${r.alert}`, r.expr, real)) used.add(m);
  }
  for (const m of [
    "gen_ai_client_operation_duration_count",
    "gen_ai_client_operation_duration_bucket",
    "gen_ai_client_operation_time_to_first_chunk_bucket",
    "llm_resilience_attempts_total",
    "llm_resilience_retries_total",
    "llm_resilience_breaker_state",
    "llm_resilience_breaker_transitions_total",
    "llm_resilience_fallbacks_total",
    "llm_resilience_cost_total",
    "llm_resilience_spend_rejections_total",
  ])
    assert.ok(used.has(m), `no alert rule uses ${m}`);
  for (const name of [
    "LLMCallErrorRatioHigh",
    "LLMCircuitBreakerOpen",
    "LLMRetryStorm",
    "LLMLatencyP95High",
    "LLMFallbacksFiring",
    "LLMRateLimitedSustained",
    "LLMSpendRateHigh",
    "LLMSpendLimitRejecting",
  ])
    assert.ok(
      rules.some((r: any) => r.alert === name),
      `alert ${name} missing`,
    );

  const cases = alertTests.tests.flatMap((t: any) => t.alert_rule_test ?? []);
  for (const r of rules) {
    const mine = cases.filter((c: any) => c.alertname === r.alert);
    assert.ok(
      mine.some((c: any) => (c.exp_alerts ?? []).length > 0),
      `${r.alert}: no firing test`,
    );
    assert.ok(
      mine.some((c: any) => (c.exp_alerts ?? []).length === 0),
      `${r.alert}: no not-firing test`,
    );
  }
  // series in the unit tests use real names too
  for (const t of alertTests.tests)
    for (const s of t.input_series) {
      const name = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(s.series)![1];
      assert.ok(name === "up" || real.metrics.has(name), `alerts.test.yml: series ${name} is not a real metric`);
    }
});

test("the Grafana dashboard parses and queries only metrics that exist", async () => {
  const real = await realScrape();
  const dash = JSON.parse(read(DASHBOARD));
  assert.equal(dash.uid, "llm-resilience");
  const provisioned = yamlFile("deploy/grafana/provisioning/dashboards/dashboards.yml").providers[0].options.path;
  assert.ok(
    bindMounts("grafana").some((m) => m.target === provisioned && existsSync(rel(path.join(m.source, path.basename(DASHBOARD))))),
    "dashboard folder mounted where the provider reads",
  );
  const dsUids = yamlFile("deploy/grafana/provisioning/datasources/datasources.yml").datasources.map((d: any) => d.uid);

  const panels = dash.panels.flatMap((p: any) => [p, ...(p.panels ?? [])]).filter((p: any) => p.type !== "row");
  const used = new Set<string>();
  let queries = 0;
  for (const p of panels) {
    assert.ok(p.targets?.length, `panel "${p.title}" has no query`);
    for (const t of p.targets) {
      const uid = t.datasource?.uid ?? p.datasource?.uid;
      assert.ok(uid === "${datasource}" || dsUids.includes(uid), `panel "${p.title}": unknown data source ${uid}`);
      const ms = checkExpr(`panel "${p.title}"`, t.expr, real);
      assert.ok(ms.length > 0, `panel "${p.title}" queries no known metric: ${t.expr}`);
      for (const m of ms) used.add(m);
      queries++;
    }
  }
  for (const v of dash.templating.list.filter((v: any) => v.type === "query")) {
    const q = typeof v.query === "string" ? v.query : v.query.query;
    assert.ok(checkExpr(`variable ${v.name}`, q, real).length > 0, `variable ${v.name} queries no known metric`);
  }
  assert.ok(dsUids.includes(dash.templating.list.find((v: any) => v.type === "datasource").current.value));
  // what the dashboard must show
  for (const m of [
    "gen_ai_client_operation_duration_count", // calls, error ratio
    "gen_ai_client_operation_duration_bucket", // latency p50/p95/p99
    "gen_ai_client_operation_time_to_first_chunk_bucket",
    "gen_ai_client_token_usage_sum",
    "llm_resilience_retries_total",
    "llm_resilience_attempts_total",
    "llm_resilience_breaker_state",
    "llm_resilience_fallbacks_total",
    "llm_resilience_cost_total",
    "llm_resilience_spend_rejections_total",
  ])
    assert.ok(used.has(m), `dashboard does not use ${m}`);
  assert.ok(queries >= 10);
});

test("promtool: config, rules, rule unit tests and dashboard PromQL", () => {
  const which = spawnSync("sh", ["-c", "command -v promtool"], { encoding: "utf8" });
  assert.equal(
    which.status,
    0,
    "promtool is not on PATH: install it (Debian/Ubuntu: apt-get install -y prometheus) - CI does - then re-run; it runs scripts/promtool-check.sh",
  );
  const run = spawnSync("bash", [rel("scripts/promtool-check.sh")], { cwd: ROOT, encoding: "utf8" });
  assert.equal(run.status, 0, `scripts/promtool-check.sh failed:\n${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /all checks passed/);

  // Dashboard expressions are valid PromQL: check them as recording rules.
  const dash = JSON.parse(read(DASHBOARD));
  const exprs: string[] = dash.panels.flatMap((p: any) => (p.targets ?? []).map((t: any) => t.expr));
  const dir = mkdtempSync(path.join(os.tmpdir(), "dash-promql-"));
  try {
    const rules = exprs.map((e, i) => ({
      record: `dashboard:query_${i}`,
      expr: e.replace(/\$__rate_interval/g, "5m").replace(/\$\{?[a-zA-Z_]+\}?/g, ".*"),
    }));
    const file = path.join(dir, "dashboard-rules.yml");
    writeFileSync(file, JSON.stringify({ groups: [{ name: "dashboard", rules }] }));
    const check = spawnSync("promtool", ["check", "rules", file], { encoding: "utf8" });
    assert.equal(check.status, 0, `dashboard PromQL invalid:\n${check.stdout}\n${check.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(statSync(rel("scripts/promtool-check.sh")).mode & 0o100, "scripts/promtool-check.sh should be executable");
});
