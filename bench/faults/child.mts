// Resilience under one fault schedule, one configuration per process (run with node --import tsx).
// argv: <config sdk|cockatiel|ours> [callers=20] [scale=1]
//
// The fake provider runs on a worker thread (its own event loop) and walks through: healthy -> 429 storm
// (a fixed-window rate limit far below demand, 429 + retry-after-ms) -> hard outage of the model (503)
// -> recovery. N callers each loop "call, then wait for the next 100 ms slot" until the schedule ends. Every call carries an
// x-bench-call-id header, so the provider's log tells how many HTTP requests each call cost.
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
// @ts-ignore -- plain ESM helper shared with the .mjs benchmarks
import { quantile, require, setupOtel, writeResult } from '../lib/common.mjs';
import type { Schedule } from './provider-worker.mts';

const [config = 'ours', callersArg, scaleArg] = process.argv.slice(2);
const CALLERS = Number(callersArg ?? 20);
const S = Number(scaleArg ?? 1);
/** Each caller starts at most one call per CADENCE_MS (closed loop, paced): a call that fails in 0.2 ms
 * does not turn its caller into a request cannon, a call that takes 1.5 s skips the slots it overran. */
const CADENCE_MS = 100;
const MODEL = 'gpt-4o-mini';
const schedule: Schedule = {
  stormAt: 1500 * S,
  outageAt: 4000 * S,
  recoverAt: 7500 * S,
  endAt: 10000 * S,
  latencyMs: 20,
  stormWindowMs: 100,
  stormCapacity: 12,
  model: MODEL,
};

const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url), { workerData: schedule });
const phases: Record<string, number> = {};
let onReport: ((r: any[]) => void) | undefined;
const url: string = await new Promise((resolve, reject) => {
  worker.on('error', reject);
  worker.on('message', (m: any) => {
    if (m.type === 'ready') resolve(m.url);
    else if (m.type === 'phase') phases[m.name] = m.at;
    else if (m.type === 'report') onReport?.(m.requests);
  });
});

setupOtel();
const notes: string[] = [];
if (config === 'ours') {
  const opts = { startSdk: false, breaker: { failures: 5, cooldownMs: 500 }, baseDelayMs: 20, maxDelayMs: 200 };
  require('llm-resilience').register(opts);
  notes.push(`register(${JSON.stringify(opts)}); SDK maxRetries default (2) -> 3 attempts`);
}
const OpenAI = require('openai').OpenAI;
const client = new OpenAI({ apiKey: 'sk-bench', baseURL: `${url}/v1`, maxRetries: config === 'cockatiel' ? 0 : 2, timeout: 5000 });

type Send = (callId: string) => Promise<unknown>;
const body = { model: MODEL, messages: [{ role: 'user' as const, content: 'Say hi' }] };
const plain: Send = (callId) => client.chat.completions.create(body, { headers: { 'x-bench-call-id': callId } });
let send: Send = plain;

if (config === 'sdk') notes.push('openai SDK built-in retries: maxRetries 2 (its backoff 0.5-8 s is not configurable; retry-after-ms honoured)');
if (config === 'cockatiel') {
  const c = require('cockatiel');
  const transient = (e: any) => e?.status === 429 || e?.status === 408 || e?.status >= 500 || e?.constructor?.name === 'APIConnectionError' || e?.constructor?.name === 'APIConnectionTimeoutError';
  const outage = (e: any) => e?.status >= 500 || e?.constructor?.name === 'APIConnectionError' || e?.constructor?.name === 'APIConnectionTimeoutError';
  const retry = c.retry(c.handleWhen(transient), { maxAttempts: 2, backoff: new c.ExponentialBackoff({ initialDelay: 20, maxDelay: 200 }) });
  const breaker = c.circuitBreaker(c.handleWhen(outage), { halfOpenAfter: 500, breaker: new c.ConsecutiveBreaker(5) });
  const policy = c.wrap(retry, breaker);
  send = (callId) => policy.execute(() => plain(callId));
  notes.push('cockatiel wrap(retry(429/408/5xx/conn, maxAttempts 2, ExponentialBackoff 20-200 ms), circuitBreaker(5xx/conn, ConsecutiveBreaker(5), halfOpenAfter 500 ms)); SDK maxRetries 0; retry-after not read');
}

// warm-up before the schedule starts (connections, JIT); not counted
for (let i = 0; i < 20; i++) await plain(`warm-${i}`);

interface CallRecord {
  start: number;
  end: number;
  ms: number;
  ok: boolean;
  error?: string;
}
const calls: CallRecord[] = [];
const errorName = (e: any) => (e?.status ? String(e.status) : e?.constructor?.name ?? 'error');

const startAt = Date.now();
worker.postMessage({ type: 'start' });
const endAt = startAt + schedule.endAt;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
await Promise.all(
  Array.from({ length: CALLERS }, async (_, c) => {
    for (let k = 0; Date.now() < endAt; k++) {
      const start = Date.now();
      const t0 = performance.now();
      let ok = true;
      let error: string | undefined;
      try {
        await send(`${c}-${k}`);
      } catch (e) {
        ok = false;
        error = errorName(e);
      }
      const end = Date.now();
      calls.push({ start, end, ms: performance.now() - t0, ok, error });
      await sleep(Math.max(0, start + CADENCE_MS - end));
    }
  }),
);

const requests: { at: number; callId?: string; retryCount?: number }[] = await new Promise((resolve) => {
  onReport = resolve;
  worker.postMessage({ type: 'report' });
});
await worker.terminate();

const scheduled = requests.filter((r) => r.callId && !r.callId.startsWith('warm') && r.at >= startAt);
const perCall = new Map<string, number>();
for (const r of scheduled) perCall.set(r.callId!, (perCall.get(r.callId!) ?? 0) + 1);
let retries = 0;
for (const n of perCall.values()) retries += n - 1;
const outageStart = phases.outage!;
const recovered = phases.recovered!;
const inOutage = scheduled.filter((r) => r.at >= outageStart && r.at < recovered).length;
const firstOkAfter = calls.filter((c) => c.ok && c.end >= recovered).reduce((m, c) => Math.min(m, c.end), Infinity);
const lat = calls.map((c) => c.ms).sort((a, b) => a - b);
const rate = (xs: CallRecord[]) => (xs.length ? xs.filter((c) => c.ok).length / xs.length : NaN);
const startedIn = (a: number, b: number) => calls.filter((c) => c.start >= a && c.start < b);
const errors: Record<string, number> = {};
for (const c of calls) if (!c.ok) errors[c.error!] = (errors[c.error!] ?? 0) + 1;

writeResult({
  config,
  callers: CALLERS,
  schedule,
  calls: calls.length,
  successRate: rate(calls),
  successRateStorm: rate(startedIn(phases.storm!, outageStart)),
  successRateOutage: rate(startedIn(outageStart, recovered)),
  successRateAfter: rate(startedIn(recovered, Infinity)),
  successRateOutsideOutage: rate(calls.filter((c) => c.start < outageStart || c.start >= recovered)),
  successes: calls.filter((c) => c.ok).length,
  phaseCalls: {
    healthy: startedIn(startAt, phases.storm!).length,
    storm: startedIn(phases.storm!, outageStart).length,
    outage: startedIn(outageStart, recovered).length,
    after: startedIn(recovered, Infinity).length,
  },
  phaseOk: {
    healthy: startedIn(startAt, phases.storm!).filter((c) => c.ok).length,
    storm: startedIn(phases.storm!, outageStart).filter((c) => c.ok).length,
    outage: startedIn(outageStart, recovered).filter((c) => c.ok).length,
    after: startedIn(recovered, Infinity).filter((c) => c.ok).length,
  },
  failP50ms: quantile(calls.filter((c) => !c.ok).map((c) => c.ms).sort((a, b) => a - b), 0.5),
  requests: scheduled.length,
  requestsInOutage: inOutage,
  outageMs: recovered - outageStart,
  retries,
  p50ms: quantile(lat, 0.5),
  p99ms: quantile(lat, 0.99),
  recoveryMs: firstOkAfter - recovered,
  errors,
  notes,
});
process.exit(0);
