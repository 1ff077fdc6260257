// The fake provider (real HTTP on 127.0.0.1) on its own thread, driven through the fault schedule.
// Messages in: { type: "start", t0? } -> runs the schedule from t0 (Date.now() of the caller's clock, so the
// callers' arrival schedule and the provider's phases share one origin); { type: "report" } -> request log.
// Messages out: { type: "ready", url }, { type: "phase", name, at }, { type: "report", requests }.
import { parentPort, workerData } from 'node:worker_threads';
import { startFakeProvider } from '../../test/fake-provider/index.ts';

export interface Schedule {
  /**
   * ms from start: healthy until stormAt, 429 storm until outageAt, 503 outage of `model` until recoverAt,
   * healthy until endAt. The storm is account-wide (every model shares its capacity); the outage is of
   * `model` only: any other model (the callers' fallback) stays healthy through it.
   */
  stormAt: number;
  outageAt: number;
  recoverAt: number;
  endAt: number;
  latencyMs: number;
  /** Storm: the provider admits `stormCapacity` requests per `stormWindowMs` window; the rest get 429 + retry-after-ms. */
  stormWindowMs: number;
  stormCapacity: number;
  model: string;
}

const schedule = workerData as Schedule;
const port = parentPort!;
const provider = await startFakeProvider({ defaults: { latencyMs: schedule.latencyMs } });

function rateLimitWindow(): void {
  provider.clearRules();
  provider.script(
    { times: schedule.stormCapacity, action: { success: {} } },
    {
      times: Infinity,
      action: {
        status: 429,
        headers: { 'retry-after-ms': String(schedule.stormWindowMs), 'retry-after': '1' },
        errorType: 'requests',
        errorCode: 'rate_limit_exceeded',
      },
    },
  );
}

port.on('message', async (msg: any) => {
  if (msg.type === 'start') {
    const t0 = typeof msg.t0 === 'number' ? msg.t0 : Date.now();
    const phase = (name: string) => port.postMessage({ type: 'phase', name, at: Date.now() });
    phase('healthy');
    const timers: NodeJS.Timeout[] = [];
    let windowTimer: NodeJS.Timeout | undefined;
    const at = (ms: number, fn: () => void) => timers.push(setTimeout(fn, Math.max(0, t0 + ms - Date.now())));
    at(schedule.stormAt, () => {
      rateLimitWindow();
      windowTimer = setInterval(rateLimitWindow, schedule.stormWindowMs);
      phase('storm');
    });
    at(schedule.outageAt, () => {
      clearInterval(windowTimer);
      provider.clearRules();
      provider.script({ match: { model: schedule.model }, times: Infinity, action: { status: 503 } });
      phase('outage');
    });
    at(schedule.recoverAt, () => {
      provider.clearRules();
      phase('recovered');
    });
    at(schedule.endAt, () => phase('end'));
  } else if (msg.type === 'report') {
    port.postMessage({
      type: 'report',
      requests: provider.requests.map((r) => ({ at: r.at, callId: r.headers['x-bench-call-id'], model: r.model, retryCount: r.retryCount })),
    });
    await provider.close();
  }
});
port.postMessage({ type: 'ready', url: provider.url });
