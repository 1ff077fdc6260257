/**
 * Differential: the library never changes what the caller sees. Every call of the corpus
 * (test/fixtures/reliability/corpus.ts: JSON and streamed, both SDKs, successes and every error class)
 * runs three times against the same scripted fake provider:
 *   A. in a child process where llm-resilience is never loaded (the SDKs' own retries, maxRetries 2);
 *   B. in this process with the library registered (our policy loop, same maxRetries → same attempts);
 *   C. in this process through clients excluded with `instrument(client, false)`.
 * B and C must equal A: deep-equal values (ids and timestamps the fake randomises are normalised),
 * the same chunks in the same order, the same error class, status, type/code and message, and the same
 * requests on the wire (count, bodies, retry-count header). What is NOT compared: timing — our
 * backoff (full jitter on 0.5 s..8 s) and the SDK's (0.5 s·2^n, 25 % jitter) draw different delays.
 * The corpus cases named "DESIGN …" are where the policies change the outcome on purpose; each has
 * its own test below that asserts the difference.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { instrument, register } from "../src/index.ts";
import { startFakeProvider, type FakeProvider, type RecordedRequest } from "./fake-provider/index.ts";
import { CORPUS, rulesFor, runCorpus, type Outcome } from "./fixtures/reliability/corpus.ts";
import { describeRun, runChild } from "./helpers/child.ts";
import { installCountingTelemetry } from "./helpers/otel.ts";

const { tel, counter } = installCountingTelemetry();
const BACKUP = "dx-backup-gpt";
const byName = (name: string) => CORPUS.find((c) => c.name === name)!;
const FALLBACK_CASE = byName("DESIGN fallback model");

/** Two fakes so the no-library child (A) and the in-process run (B) go at the same time. */
let fake: FakeProvider;
let fakeA: FakeProvider;
type Wire = { count: number; retryCounts: (number | undefined)[]; bodies: unknown[]; paths: string[]; headers: Record<string, string>[] };
/** Request headers that legitimately differ between two runs. */
const VOLATILE_HEADERS = new Set(["host", "content-length", "connection", "x-stainless-retry-count"]);
const sides: Record<"A" | "B" | "C", { results: Record<string, Outcome>; wire: Map<string, Wire> }> = {} as any;

/**
 * Per model, what reached the provider. Sorted by retry-count header: a request that timed out on the
 * client may be recorded by the fake after its retry when the event loop is busy.
 */
function wireByModel(requests: RecordedRequest[]): Map<string, Wire> {
  const out = new Map<string, Wire>();
  const sorted = [...requests].sort((x, y) => (x.model ?? "").localeCompare(y.model ?? "") || (x.retryCount ?? 0) - (y.retryCount ?? 0));
  for (const r of sorted) {
    const key = r.model ?? "?";
    const w = out.get(key) ?? { count: 0, retryCounts: [], bodies: [], paths: [], headers: [] };
    w.count++;
    w.retryCounts.push(r.retryCount);
    w.bodies.push(r.body);
    w.paths.push(r.url);
    w.headers.push(Object.fromEntries(Object.entries(r.headers).filter(([k]) => !VOLATILE_HEADERS.has(k))));
    out.set(key, w);
  }
  return out;
}

function scriptAll(f: FakeProvider): void {
  f.reset();
  for (const c of CORPUS) f.script(...rulesFor(c));
}

const clientsFor = () => ({
  openai: new OpenAI({ apiKey: "sk-differential", baseURL: fake.openaiBaseURL }),
  anthropic: new Anthropic({ apiKey: "sk-ant-differential", baseURL: fake.anthropicBaseURL }),
});

before(async () => {
  [fake, fakeA] = await Promise.all([startFakeProvider(), startFakeProvider()]);
  register({ startSdk: false, logLevel: "silent", fallbacks: { [FALLBACK_CASE.model]: [BACKUP] } });
  scriptAll(fakeA);
  scriptAll(fake);
  tel.reset();

  const [run, resultsB] = await Promise.all([
    // A: no library at all, in a child process.
    runChild(["--import", "tsx", "test/fixtures/reliability/differential-child.ts"], { env: { FAKE_URL: fakeA.url }, timeoutMs: 30_000 }),
    // B: with the library (defaults, except the fallback the DESIGN case needs).
    runCorpus(clientsFor()),
  ]);
  const line = run.stdout.split("\n").find((l) => l.startsWith("RESULT "));
  assert.ok(run.code === 0 && line, `the no-library child failed\n${describeRun(run)}`);
  const child = JSON.parse(line!.slice("RESULT ".length));
  assert.deepEqual(child.loaded, [], "llm-resilience must not be loaded on the no-library side");
  assert.equal(child.patched, false);
  sides.A = { results: child.results, wire: wireByModel(fakeA.requests) };
  sides.B = { results: resultsB, wire: wireByModel(fake.requests) };

  // C: with the library registered, through excluded clients (the timing-sensitive hang cases are
  // left out here; A vs B covers them).
  scriptAll(fake);
  const spansBeforeC = tel.finished().length;
  const excluded = clientsFor();
  instrument(excluded.openai, false);
  instrument(excluded.anthropic, false);
  sides.C = { results: await runCorpus(excluded, (c) => !c.isolated), wire: wireByModel(fake.requests) };
  assert.equal(tel.finished().length, spansBeforeC, "an excluded client produces no spans");
});
after(() => Promise.all([fake.close(), fakeA.close()]));

const plain = CORPUS.filter((c) => !c.designDifference);

describe("same outcome with and without the library", () => {
  test(`the corpus covers both SDKs, streams and every error class (${CORPUS.length} cases)`, () => {
    const names = CORPUS.map((c) => c.name).join("\n");
    for (const needle of ["400", "401", "403", "404", "422", "429", "500", "529", "connection reset", "timeout", "mid-stream error", "stream cut"]) {
      assert.match(names, new RegExp(`openai.*${needle}`), `openai ${needle}`);
      assert.match(names, new RegExp(`anthropic.*${needle}`), `anthropic ${needle}`);
    }
    // The corpus exercises both outcomes: values and errors, on both sides.
    const a = Object.values(sides.A.results);
    assert.ok(a.filter((o) => o.error).length >= 25 && a.filter((o) => !o.error).length >= 20);
  });

  for (const c of plain) {
    test(c.name, () => {
      const a = sides.A.results[c.name]!;
      const b = sides.B.results[c.name]!;
      assert.ok(a, "ran without the library");
      assert.deepEqual(b, a, "the caller sees the same value / chunks / error with the library");
      const wa = sides.A.wire.get(c.model);
      const wb = sides.B.wire.get(c.model);
      assert.deepEqual(
        { count: wb?.count, bodies: wb?.bodies, paths: wb?.paths },
        { count: wa?.count, bodies: wa?.bodies, paths: wa?.paths },
        "the same requests reach the provider: count (same maxRetries → same attempts), bodies, URLs",
      );
    });
  }

  test("every retry carries X-Stainless-Retry-Count = its retry index, as the SDK sends it", () => {
    const diffs: string[] = [];
    for (const c of plain) {
      const a = sides.A.wire.get(c.model)?.retryCounts;
      const b = sides.B.wire.get(c.model)?.retryCounts;
      if (JSON.stringify(a) !== JSON.stringify(b)) diffs.push(`${c.name}: without ${JSON.stringify(a)} / with ${JSON.stringify(b)}`);
    }
    assert.deepEqual(diffs, [], "retry-count headers differ");
  });

  test("request headers are the ones the SDK sends without the library", () => {
    const diffs = new Set<string>();
    for (const c of plain) {
      const a = sides.A.wire.get(c.model)?.headers ?? [];
      const b = sides.B.wire.get(c.model)?.headers ?? [];
      a.forEach((ha, i) => {
        const hb = b[i] ?? {};
        for (const k of new Set([...Object.keys(ha), ...Object.keys(hb)])) {
          if (ha[k] !== hb[k]) diffs.add(`${c.sdk} ${k}: without ${JSON.stringify(ha[k])} / with ${JSON.stringify(hb[k])}`);
        }
      });
    }
    assert.deepEqual([...diffs], [], "request headers differ");
  });

  test("instrument(client, false) is a pure pass-through: equal to the no-library run for every case", () => {
    for (const c of CORPUS.filter((x) => !x.isolated)) {
      assert.deepEqual(sides.C.results[c.name], sides.A.results[c.name], c.name);
      assert.deepEqual(sides.C.wire.get(c.model), sides.A.wire.get(c.model), `${c.name}: wire`);
    }
  });
});

describe("telemetry of the instrumented run matches what the caller saw", () => {
  test("one logical span per call, every span ended exactly once, attempts == requests on the wire", () => {
    assert.deepEqual(counter.open(), [], "no span left open");
    assert.deepEqual(counter.endedTwice(), [], "no span ended twice");
    for (const c of plain) {
      const spans = tel.logical().filter((s) => s.attributes["gen_ai.request.model"] === c.model);
      assert.equal(spans.length, 1, `${c.name}: logical spans`);
      const span = spans[0]!;
      const outcome = sides.B.results[c.name]!;
      const attempts = tel.attemptsOf(span);
      assert.equal(span.attributes["llm_resilience.attempts"], attempts.length, `${c.name}: llm_resilience.attempts`);
      assert.equal(attempts.length, sides.B.wire.get(c.model)?.count ?? 0, `${c.name}: one attempt span per request`);
      assert.equal(span.status.code === 2, outcome.error !== undefined, `${c.name}: span status follows the outcome`);
      assert.equal(span.attributes["error.type"] !== undefined, outcome.error !== undefined, `${c.name}: error.type iff the call failed`);
    }
  });

  test("error.type of failed calls is the provider's type, the status, or timeout/connection_error/_OTHER", () => {
    const expected: Record<string, string> = {
      "openai chat 401": "invalid_request_error",
      "openai chat 429 x3 (exhausted)": "rate_limit_error",
      "openai chat 500 x3 (exhausted)": "server_error",
      "openai chat 529 x3 (exhausted)": "overloaded_error",
      "openai chat connection reset x3": "connection_error",
      "openai chat timeout x3": "timeout",
      "openai chat 400 context_length_exceeded": "context_length_exceeded",
      "openai chat malformed JSON body": "_OTHER",
      "anthropic messages 401": "authentication_error",
      "anthropic messages 529 x3": "overloaded_error",
      "anthropic messages prompt too long": "context_length_exceeded",
      "anthropic messages connection reset x3": "connection_error",
      "anthropic messages timeout x3": "timeout",
      "anthropic stream mid-stream error": "overloaded_error",
    };
    for (const [name, type] of Object.entries(expected)) {
      const span = tel.logical().find((s) => s.attributes["gen_ai.request.model"] === byName(name).model)!;
      assert.equal(span.attributes["error.type"], type, name);
    }
  });
});

describe("where the policies change the outcome by design", () => {
  test("fallback: the primary's 503s end in the backup model's answer instead of the 503", () => {
    const c = FALLBACK_CASE;
    const a = sides.A.results[c.name]!;
    const b = sides.B.results[c.name]!;
    assert.equal(a.error?.class, "InternalServerError");
    assert.equal(a.error?.status, 503);
    assert.equal(b.error, undefined);
    assert.equal((b.value as any).model, BACKUP, "the answer comes from the fallback model");
    assert.equal(sides.A.wire.get(c.model)?.count, 3, "SDK: 3 attempts on the primary");
    assert.equal(sides.B.wire.get(c.model)?.count, 3, "library: the same 3 attempts on the primary…");
    assert.equal(sides.B.wire.get(BACKUP)?.count, 1, "…then one on the backup");
    assert.equal(sides.A.wire.get(BACKUP), undefined);
    // Apart from the model, the backup's answer has the shape of a normal success.
    const ok = sides.A.results["openai chat ok"]!.value as any;
    assert.deepEqual({ ...(b.value as any), model: ok.model }, ok);
  });

  test("retry-after of 120 s: the SDK retries on its backoff (ignores > 60 s), the library gives up at once", () => {
    const c = byName("DESIGN retry-after above the cap");
    assert.equal(sides.A.results[c.name]!.error, undefined, "without the library: retried and succeeded");
    assert.equal(sides.A.wire.get(c.model)?.count, 2);
    const err = sides.B.results[c.name]!.error!;
    assert.equal(err.class, "RateLimitError");
    assert.equal(err.status, 429);
    assert.equal(sides.B.wire.get(c.model)?.count, 1, "the library did not retry against the server's wish");
    const span = tel.logical().find((s) => s.attributes["gen_ai.request.model"] === c.model)!;
    const giveUp = span.events.find((e) => e.name === "llm_resilience.give_up");
    assert.equal(giveUp?.attributes?.["llm_resilience.give_up.reason"], "retry_after_too_long");
  });

  test("breaker: the 6th call after 5 consecutive 500s is rejected before it is sent", () => {
    const c = byName("DESIGN breaker open");
    const a = (sides.A.results[c.name]!.value as Outcome[]).map((o) => o.error?.class);
    const b = (sides.B.results[c.name]!.value as Outcome[]).map((o) => o.error?.class);
    assert.deepEqual(a, Array(6).fill("InternalServerError"));
    assert.deepEqual(b, [...Array(5).fill("InternalServerError"), "BreakerOpenError"]);
    // The first five are identical errors on both sides.
    assert.deepEqual(
      (sides.B.results[c.name]!.value as Outcome[]).slice(0, 5),
      (sides.A.results[c.name]!.value as Outcome[]).slice(0, 5),
    );
    assert.equal(sides.A.wire.get(c.model)?.count, 6);
    assert.equal(sides.B.wire.get(c.model)?.count, 5);
  });
});
