/**
 * The exporters register sets up from OTEL_* are created at their first export (start-up and calls
 * never pay for loading them); until then the metric reader's questions are answered exactly as the
 * real OTLP metric exporter answers them.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { InstrumentType } from "@opentelemetry/sdk-metrics";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { lazyOtlpMetricExporter, lazySpanExporter } from "../src/telemetry/lazy-exporters.ts";

const PREFERENCE = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";

describe("lazy exporters", () => {
  for (const preference of [undefined, "cumulative", "delta", "lowmemory", "Delta"]) {
    test(`temporality and aggregation per instrument type as OTLPMetricExporter's, ${PREFERENCE}=${preference ?? "(unset)"}`, () => {
      const saved = process.env[PREFERENCE];
      if (preference === undefined) delete process.env[PREFERENCE];
      else process.env[PREFERENCE] = preference;
      try {
        const real = new OTLPMetricExporter();
        const lazy = lazyOtlpMetricExporter(
          () => {
            throw new Error("must not be created to answer");
          },
          "test exporter",
          process.env,
        );
        for (const type of Object.values(InstrumentType)) {
          assert.equal(lazy.selectAggregationTemporality?.(type), real.selectAggregationTemporality(type), `temporality of ${type}`);
          assert.deepEqual(lazy.selectAggregation?.(type), real.selectAggregation(type), `aggregation of ${type}`);
        }
        void real.shutdown();
      } finally {
        if (saved === undefined) delete process.env[PREFERENCE];
        else process.env[PREFERENCE] = saved;
      }
    });
  }

  test("a span exporter is created at its first export, once, and passes the result through", async () => {
    let created = 0;
    const inner = new InMemorySpanExporter();
    const lazy = lazySpanExporter(() => {
      created++;
      return inner;
    }, "test exporter");
    await lazy.forceFlush?.();
    assert.equal(created, 0, "not created by a flush before any export");
    for (let i = 0; i < 2; i++) {
      const result = await new Promise<{ code: number }>((resolve) => lazy.export([], resolve));
      assert.equal(result.code, 0);
    }
    assert.equal(created, 1);
    await lazy.shutdown();
  });

  test("an exporter that cannot be created fails its exports (the processor counts them), it does not throw", async () => {
    const lazy = lazySpanExporter(() => {
      throw new Error("no such exporter");
    }, "broken test exporter");
    const result = await new Promise<{ code: number; error?: Error }>((resolve) => lazy.export([], resolve));
    assert.equal(result.code, 1);
    assert.match(String(result.error?.message), /broken test exporter could not be created/);
  });
});
