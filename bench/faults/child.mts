// Resilience under one fault schedule, one configuration per process (run with node --import tsx).
// argv: <config sdk|cockatiel|ours> [variant plain|fallback] [mode open|closed] [load] [scale=1]
//   open   (default): calls arrive on a fixed schedule, `load` calls/s (default 150) spread evenly over
//          the schedule, whatever happens to the calls already in flight: every configuration handles
//          exactly the same calls, arriving at the same times.
//   closed : `load` callers (default 20), each looping "call, then wait for the next 100 ms slot"
//          (the first version of this benchmark; a configuration that fails fast makes more calls).
//   fallback: the caller's code moves a call from PRIMARY to FALLBACK when PRIMARY is unavailable — the
//          SDK and cockatiel the way an application would write it, llm-resilience through its own option.
//
// The fake provider runs on a worker thread (its own event loop) and walks through: healthy -> 429 storm
// (a fixed-window rate limit far below demand, 429 + retry-after-ms, shared by every model) -> hard
// outage of PRIMARY (503; FALLBACK stays healthy) -> recovery. Every call carries an x-bench-call-id
// header, so the provider's log tells how many HTTP requests each call cost and to which model.
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
// @ts-ignore -- plain ESM helper shared with the .mjs benchmarks
import { quantile, require, setupOtel, writeResult } from '../lib/common.mjs';
import type { Schedule } from './provider-worker.mts';

const [config = 'ours', variantArg = 'plain', modeArg = 'open', loadArg, scaleArg] = process.argv.slice(2);
// ours-nobudget: llm-resilience with its retry budget off (retries bounded by attempts alone), a knob priced by hand.
if (!['sdk', 'cockatiel', 'ours', 'ours-nobudget'].includes(config)) throw new Error(`unknown config ${config}`);
if (!['plain', 'fallback'].includes(variantArg)) throw new Error(`unknown variant ${variantArg}`);
if (!['open', 'closed'].includes(modeArg)) throw new Error(`unknown mode ${modeArg}`);
const WITH_FALLBACK = variantArg === 'fallback';
const OPEN = modeArg === 'open';
/** open: arrivals per second; closed: callers. */
const LOAD = Number(loadArg ?? (OPEN ? 150 : 20));
const S = Number(scaleArg ?? 1);
/** Closed loop: each caller starts at most one call per CADENCE_MS (paced): a call that fails in 0.2 ms
 * does not turn its caller into a request cannon, a call that takes 1.5 s skips the slots it overran. */
const CADENCE_MS = 100;
const PRIMARY = 'gpt-4o';
const FALLBACK = 'gpt-4o-mini';
const BREAKER_COOLDOWN_MS = 500;
const schedule: Schedule = {
  stormAt: 1500 * S,
  outageAt: 4000 * S,
  recoverAt: 7500 * S,
  endAt: 10000 * S,
  latencyMs: 20,
  stormWindowMs: 100,
  stormCapacity: 12,
  model: PRIMARY,
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
if (config === 'ours' || config === 'ours-nobudget') {
  const opts = {
    startSdk: false,
    ...(config === 'ours-nobudget' && { retryBudget: false as const }),
    breaker: { failures: 5, cooldownMs: BREAKER_COOLDOWN_MS },
    baseDelayMs: 20,
    maxDelayMs: 200,
    ...(WITH_FALLBACK && { fallbacks: { [PRIMARY]: [FALLBACK] } }),
  };
  require('llm-resilience').register(opts);
  notes.push(`register(${JSON.stringify(opts)}); SDK maxRetries default (2) -> 3 attempts per model`);
}
const OpenAI = require('openai').OpenAI;
const client = new OpenAI({ apiKey: 'sk-bench', baseURL: `${url}/v1`, maxRetries: config === 'cockatiel' ? 0 : 2, timeout: 5000 });

interface Completion {
  model?: string;
}
type Send = (callId: string) => Promise<Completion>;
const messages = [{ role: 'user' as const, content: 'Say hi' }];
const plain = (callId: string, model: string): Promise<Completion> =>
  client.chat.completions.create({ model, messages }, { headers: { 'x-bench-call-id': callId } });
/** What the peers' fallback code treats as "this model is unavailable" (rate limit, overload, outage, network). */
const connError = (e: any) => e?.constructor?.name === 'APIConnectionError' || e?.constructor?.name === 'APIConnectionTimeoutError';
const transient = (e: any) => e?.status === 429 || e?.status === 408 || e?.status >= 500 || connError(e);
let send: Send = (callId) => plain(callId, PRIMARY);

if (config === 'sdk') {
  notes.push('openai SDK built-in retries: maxRetries 2 (its backoff 0.5-8 s is not configurable; retry-after-ms honoured)');
  if (WITH_FALLBACK) {
    send = async (callId) => {
      try {
        return await plain(callId, PRIMARY);
      } catch (e) {
        if (!transient(e)) throw e;
        return plain(callId, FALLBACK);
      }
    };
    notes.push(`fallback: try/catch around the call; after the SDK gave up on ${PRIMARY} with 429/408/5xx/connection error, the same call to ${FALLBACK} (its own SDK retries)`);
  }
}
if (config === 'cockatiel') {
  const c = require('cockatiel');
  const outage = (e: any) => e?.status >= 500 || connError(e);
  // One retry + breaker per model, the way an application keeps one breaker per dependency.
  const policyFor = (model: string) =>
    c.wrap(
      c.retry(c.handleWhen(transient), { maxAttempts: 2, backoff: new c.ExponentialBackoff({ initialDelay: 20, maxDelay: 200 }) }),
      c.circuitBreaker(c.handleWhen(outage), { halfOpenAfter: BREAKER_COOLDOWN_MS, breaker: new c.ConsecutiveBreaker(5) }),
    );
  const primary = policyFor(PRIMARY);
  send = (callId) => primary.execute(() => plain(callId, PRIMARY));
  notes.push(
    `cockatiel wrap(retry(429/408/5xx/conn, maxAttempts 2, ExponentialBackoff 20-200 ms), circuitBreaker(5xx/conn, ConsecutiveBreaker(5), halfOpenAfter ${BREAKER_COOLDOWN_MS} ms)) per model; SDK maxRetries 0; retry-after not read`,
  );
  if (WITH_FALLBACK) {
    const secondary = policyFor(FALLBACK);
    // Every call has its own fallback factory (it needs the call's id); the policies it wraps are shared.
    const unavailable = c.handleWhen((e: any) => transient(e) || e instanceof c.BrokenCircuitError);
    send = (callId) =>
      c
        .fallback(unavailable, () => secondary.execute(() => plain(callId, FALLBACK)))
        .execute(() => primary.execute(() => plain(callId, PRIMARY)));
    notes.push(`fallback: cockatiel fallback(429/408/5xx/conn/BrokenCircuitError) around ${PRIMARY}'s retry+breaker, calling ${FALLBACK} through its own retry+breaker`);
  }
}

// warm-up before the schedule starts (connections, JIT, both models); not counted
for (let i = 0; i < 20; i++) await plain(`warm-${i}`, i % 2 ? FALLBACK : PRIMARY);

interface CallRecord {
  id: string;
  /** Wall-clock arrival: the scheduled arrival (open loop) or the start (closed loop); phases are by arrival. */
  arrival: number;
  end: number;
  /** From the arrival to the outcome in the caller's hands. */
  ms: number;
  ok: boolean;
  /** The model that answered (a successful call). */
  model?: string;
  error?: string;
}
const calls: CallRecord[] = [];
const errorName = (e: any) => (e?.status ? String(e.status) : e?.constructor?.name ?? 'error');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One call; `due` is its arrival on the performance clock (wall clock: `arrival`). */
async function runCall(id: string, due: number, arrival: number): Promise<void> {
  let ok = true;
  let error: string | undefined;
  let model: string | undefined;
  try {
    const res = await send(id);
    model = res?.model;
  } catch (e) {
    ok = false;
    error = errorName(e);
  }
  calls.push({ id, arrival, end: Date.now(), ms: performance.now() - due, ok, model, error });
}

const perf0 = performance.now();
const startAt = Date.now();
worker.postMessage({ type: 'start', t0: startAt });
const launchLagMs: number[] = [];
let arrivals = 0;
if (OPEN) {
  // Arrival i at i * 1000/LOAD ms from the start, for the whole schedule: the same list for every configuration.
  const step = 1000 / LOAD;
  const n = Math.ceil(schedule.endAt / step);
  arrivals = n;
  const inFlight: Promise<void>[] = [];
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now() - perf0;
      for (; next < n && next * step <= now; next++) {
        launchLagMs.push(now - next * step);
        inFlight.push(runCall(String(next), perf0 + next * step, startAt + next * step));
      }
      if (next >= n) return resolve();
      setTimeout(tick, Math.max(0, next * step - (performance.now() - perf0)));
    };
    tick();
  });
  await Promise.all(inFlight);
} else {
  const endAt = startAt + schedule.endAt;
  await Promise.all(
    Array.from({ length: LOAD }, async (_, c) => {
      for (let k = 0; Date.now() < endAt; k++) {
        const start = Date.now();
        await runCall(`${c}-${k}`, performance.now(), start);
        await sleep(Math.max(0, start + CADENCE_MS - Date.now()));
      }
    }),
  );
  arrivals = calls.length;
}
const drainedMs = Date.now() - (startAt + schedule.endAt);

const requests: { at: number; callId?: string; model?: string; retryCount?: number }[] = await new Promise((resolve) => {
  onReport = resolve;
  worker.postMessage({ type: 'report' });
});
await worker.terminate();

const scheduled = requests.filter((r) => r.callId && !r.callId.startsWith('warm') && r.at >= startAt);
/** callId -> requests per model */
const perCall = new Map<string, Map<string, number>>();
for (const r of scheduled) {
  const m = perCall.get(r.callId!) ?? new Map<string, number>();
  m.set(r.model ?? '?', (m.get(r.model ?? '?') ?? 0) + 1);
  perCall.set(r.callId!, m);
}
// retries: requests beyond the first on each model of a call; the first request on the fallback model is a fallback, not a retry
let retries = 0;
let fallbackTried = 0;
for (const m of perCall.values()) {
  for (const n of m.values()) retries += n - 1;
  if (m.has(FALLBACK)) fallbackTried++;
}
const outageStart = phases.outage!;
const recovered = phases.recovered!;
const inWindow = (r: { at: number }) => r.at >= outageStart && r.at < recovered;
const inOutage = scheduled.filter((r) => inWindow(r) && r.model === PRIMARY).length;
const fallbackRequestsInOutage = scheduled.filter((r) => inWindow(r) && r.model === FALLBACK).length;
const firstPrimaryOkAfter = calls.filter((c) => c.ok && c.model === PRIMARY && c.end >= recovered).reduce((m, c) => Math.min(m, c.end), Infinity);
const firstPrimaryRequestAfter = scheduled.filter((r) => r.model === PRIMARY && r.at >= recovered).reduce((m, r) => Math.min(m, r.at), Infinity);
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const lat = sorted(calls.map((c) => c.ms));
const okLat = sorted(calls.filter((c) => c.ok).map((c) => c.ms));
const rate = (xs: CallRecord[]) => (xs.length ? xs.filter((c) => c.ok).length / xs.length : NaN);
const bounds: Record<string, [number, number]> = {
  healthy: [startAt, phases.storm!],
  storm: [phases.storm!, outageStart],
  outage: [outageStart, recovered],
  after: [recovered, Infinity],
};
const arrivedIn = (p: string) => calls.filter((c) => c.arrival >= bounds[p]![0] && c.arrival < bounds[p]![1]);
const perPhase = (f: (xs: CallRecord[]) => number) => Object.fromEntries(Object.keys(bounds).map((p) => [p, f(arrivedIn(p))]));
const errors: Record<string, number> = {};
for (const c of calls) if (!c.ok) errors[c.error!] = (errors[c.error!] ?? 0) + 1;
const fin = (x: number) => (Number.isFinite(x) ? x : null);

writeResult({
  config,
  variant: variantArg,
  mode: modeArg,
  ...(OPEN ? { ratePerS: LOAD } : { callers: LOAD }),
  primaryModel: PRIMARY,
  fallbackModel: FALLBACK,
  breakerCooldownMs: BREAKER_COOLDOWN_MS,
  schedule,
  arrivals,
  calls: calls.length,
  successes: calls.filter((c) => c.ok).length,
  successRate: rate(calls),
  successRateStorm: rate(arrivedIn('storm')),
  successRateOutage: rate(arrivedIn('outage')),
  successRateAfter: rate(arrivedIn('after')),
  successRateOutsideOutage: rate(calls.filter((c) => c.arrival < outageStart || c.arrival >= recovered)),
  phaseCalls: perPhase((xs) => xs.length),
  phaseOk: perPhase((xs) => xs.filter((c) => c.ok).length),
  phaseServedByFallback: perPhase((xs) => xs.filter((c) => c.ok && c.model === FALLBACK).length),
  servedByFallback: calls.filter((c) => c.ok && c.model === FALLBACK).length,
  fallbackTried,
  failP50ms: quantile(sorted(calls.filter((c) => !c.ok).map((c) => c.ms)), 0.5),
  requests: scheduled.length,
  requestsPrimary: scheduled.filter((r) => r.model === PRIMARY).length,
  requestsFallback: scheduled.filter((r) => r.model === FALLBACK).length,
  requestsInOutage: inOutage,
  fallbackRequestsInOutage,
  outageMs: recovered - outageStart,
  retries,
  p50ms: quantile(lat, 0.5),
  p99ms: quantile(lat, 0.99),
  okP50ms: quantile(okLat, 0.5),
  okP99ms: quantile(okLat, 0.99),
  /** provider recovered -> first call served by the primary model completes */
  recoveryMs: fin(firstPrimaryOkAfter - recovered),
  /** provider recovered -> first request to the primary model arrives */
  firstPrimaryRequestAfterMs: fin(firstPrimaryRequestAfter - recovered),
  /** open loop: how late the driver launched arrivals (event-loop lag), p50 / p99 / max ms */
  launchLagMs: launchLagMs.length ? [quantile(sorted(launchLagMs), 0.5), quantile(sorted(launchLagMs), 0.99), Math.max(...launchLagMs)] : null,
  /** after the schedule's end, until the last call completed */
  drainedMs,
  errors,
  notes,
});
process.exit(0);
