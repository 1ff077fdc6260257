// The per-call counters (llm_resilience.attempts, llm_resilience.cost) are summed in process between
// collections and handed to the SDK's Counter at collection: what a reader exports must be exactly what
// adding to the Counter directly exported, and the instrument must stay a Counter (dashboards and alert
// rules query llm_resilience_attempts_total as one).
import assert from "node:assert/strict";
import { test } from "node:test";
import { AggregationTemporality, DataPointType, InstrumentType } from "@opentelemetry/sdk-metrics";
import { getInstruments, resetInstruments } from "../src/telemetry/instruments.ts";
import { metricLabels, withErrorType } from "../src/telemetry/metric-labels.ts";
import { installTestTelemetry } from "./helpers/otel.ts";

const tel = installTestTelemetry();

async function counter(name: string) {
  const rm = await tel.metrics();
  const found = rm.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
  assert.ok(found, `${name} exported`);
  return found;
}

const sumOf = (m: Awaited<ReturnType<typeof counter>>, match: Record<string, unknown>) =>
  (m.dataPoints as { attributes: Record<string, unknown>; value: number }[])
    .filter(
      (dp) => Object.entries(match).every(([k, v]) => dp.attributes[k] === v) && Object.keys(dp.attributes).length === Object.keys(match).length,
    )
    .reduce((a, dp) => a + dp.value, 0);

test("attempts: every add reaches the exporter as a cumulative monotonic sum of a Counter, per label set", async () => {
  resetInstruments();
  const ok = metricLabels("chat", "openai", "gpt-4o-mini", "api.openai.com").base;
  const failed = withErrorType(ok, "429");
  assert.equal(withErrorType(ok, "429"), failed, "one shared label object per error type");
  const m = getInstruments();
  for (let i = 0; i < 1000; i++) m.attempts.add(1, ok);
  for (let i = 0; i < 7; i++) m.attempts.add(1, failed);

  let attempts = await counter("llm_resilience.attempts");
  assert.equal(attempts.descriptor.type, InstrumentType.COUNTER);
  assert.equal(attempts.dataPointType, DataPointType.SUM);
  assert.equal((attempts as { isMonotonic?: boolean }).isMonotonic, true);
  assert.equal(attempts.aggregationTemporality, AggregationTemporality.CUMULATIVE);
  assert.equal(sumOf(attempts, ok), 1000);
  assert.equal(sumOf(attempts, { ...ok, "error.type": "429" }), 7);

  m.attempts.add(1, ok);
  attempts = await counter("llm_resilience.attempts");
  assert.equal(sumOf(attempts, ok), 1001, "the next collection carries on from the sum");
});

test("more label sets than are held between collections: none is lost", async () => {
  resetInstruments();
  const m = getInstruments();
  const base = metricLabels("chat", "openai", "gpt-4o-mini", "api.openai.com").base;
  for (let i = 0; i < 600; i++) m.attempts.add(1, withErrorType(base, `e${i}`));
  const attempts = await counter("llm_resilience.attempts");
  for (const i of [0, 255, 256, 257, 599]) assert.equal(sumOf(attempts, { ...base, "error.type": `e${i}` }), 1, `e${i}`);
});

test("cost: fractional USD amounts sum as the Counter summed them", async () => {
  resetInstruments();
  const labels = { "gen_ai.request.model": "m", "gen_ai.token.type": "input" };
  const m = getInstruments();
  for (let i = 0; i < 10; i++) m.cost.add(0.000_15, labels);
  const cost = await counter("llm_resilience.cost");
  assert.equal(cost.descriptor.type, InstrumentType.COUNTER);
  assert.ok(Math.abs(sumOf(cost, labels) - 0.0015) < 1e-15, `sum ${sumOf(cost, labels)}`);
});
