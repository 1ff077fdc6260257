/**
 * The demo's timeline and what the fake provider does in each phase. The fake provider answers from
 * an ordered list of scripted rules; a "scripter" rebuilds that list every few hundred ms from the
 * current phase's per-model behaviour (seeded random draws), so faults arrive at a steady rate
 * whatever the traffic.
 */
import type { FakeProvider, Fault, FaultRule } from "../test/fake-provider/index.ts";

export type Provider = "openai" | "anthropic";

export interface ModelSpec {
  provider: Provider;
  model: string;
  /** Typical answer latency of the fake provider for this model. */
  latencyMs: number;
  inputTokens: number;
  outputTokens: number;
}

export const MODELS: ModelSpec[] = [
  { provider: "openai", model: "gpt-4o", latencyMs: 110, inputTokens: 42, outputTokens: 28 },
  { provider: "openai", model: "gpt-4o-mini", latencyMs: 45, inputTokens: 42, outputTokens: 24 },
  { provider: "anthropic", model: "claude-sonnet-4-6", latencyMs: 140, inputTokens: 38, outputTokens: 31 },
  { provider: "anthropic", model: "claude-haiku-4-5", latencyMs: 55, inputTokens: 38, outputTokens: 22 },
];

/** Primary model → cheaper fallback (also what `register({ fallbacks })` is given). */
export const FALLBACKS: Record<string, string[]> = {
  "gpt-4o": ["gpt-4o-mini"],
  "claude-sonnet-4-6": ["claude-haiku-4-5"],
};

/** One way a model may answer, with its probability. The remainder are successes. */
export interface FaultMix {
  p: number;
  fault: () => Fault;
}

export interface Phase {
  id: string;
  title: string;
  /** One-line description printed when the phase starts. */
  what: string;
  durationMs: number;
  /** Per model: faults drawn with these probabilities; everything else answers normally. */
  faults: Record<string, FaultMix[]>;
}

/**
 * The four phases, at `scale` × the normal durations (1 = about 30 s in all; DEMO_SPEED=fast = 0.25).
 * The breaker cooldown given to register() is scaled alike, so the outage always sees at least one
 * failed half-open probe and the recovery a successful one.
 */
export function buildStory(scale: number): { phases: Phase[]; cooldownMs: number; retryAfterMs: number } {
  const ms = (n: number) => Math.max(1, Math.round(n * scale));
  const cooldownMs = ms(3_000);
  const retryAfterMs = ms(500);
  const rateLimitOpenAI: FaultMix = {
    p: 0.5,
    fault: () => ({ status: 429, headers: { "retry-after-ms": String(retryAfterMs) }, message: "Rate limit reached for requests" }),
  };
  // Anthropic sends whole seconds in retry-after.
  const rateLimitAnthropic: FaultMix = { p: 0.35, fault: () => ({ status: 429, headers: { "retry-after": "1" } }) };
  return {
    cooldownMs,
    retryAfterMs,
    phases: [
      {
        id: "healthy",
        title: "healthy traffic",
        what: "every model answers normally",
        durationMs: ms(6_000),
        faults: {},
      },
      {
        id: "429-storm",
        title: "429 storm",
        what: `openai: 50% of requests get 429 + retry-after-ms: ${retryAfterMs}; anthropic: 35% get 429 + retry-after: 1`,
        durationMs: ms(8_000),
        faults: {
          "gpt-4o": [rateLimitOpenAI],
          "gpt-4o-mini": [rateLimitOpenAI],
          "claude-sonnet-4-6": [rateLimitAnthropic],
          "claude-haiku-4-5": [rateLimitAnthropic],
        },
      },
      {
        id: "gpt-4o-down",
        title: "gpt-4o down",
        what: "gpt-4o answers 503 (70%) or resets the connection (30%); claude-sonnet-4-6 is overloaded now and then (15% 529)",
        durationMs: ms(11_000),
        faults: {
          "gpt-4o": [
            { p: 0.7, fault: () => ({ status: 503, message: "The server is overloaded or not ready yet." }) },
            { p: 0.3, fault: () => ({ reset: true }) },
          ],
          "claude-sonnet-4-6": [{ p: 0.15, fault: () => ({ status: 529, errorType: "overloaded_error", message: "Overloaded" }) }],
        },
      },
      {
        id: "recovery",
        title: "recovery",
        what: `gpt-4o is back; its breaker lets one probe through after the ${cooldownMs} ms cooldown and closes on success`,
        durationMs: ms(8_000),
        faults: {},
      },
    ],
  };
}

/** mulberry32: a small seeded PRNG, so every run draws the same fault sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Keeps the fake provider's rule list filled for the current phase: per model a window of
 * `perModel` pre-drawn answers (fault or success with jittered latency and token counts), then a
 * catch-all success. Rebuilt every `everyMs`.
 */
export class Scripter {
  private phase: Phase | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly rand = prng(20_240_611);

  constructor(
    private readonly fake: FakeProvider,
    private readonly perModel = 60,
    private readonly everyMs = 200,
  ) {}

  start(phase: Phase): void {
    this.phase = phase;
    this.refill();
    this.timer ??= setInterval(() => this.refill(), this.everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.fake.clearRules();
  }

  private success(m: ModelSpec): Fault {
    const r = this.rand();
    // Mostly near the typical latency, with a slow tail (5% at 3-4x).
    const latency = r < 0.05 ? m.latencyMs * (3 + this.rand()) : m.latencyMs * (0.6 + 0.8 * this.rand());
    return {
      success: {
        latencyMs: Math.round(latency),
        inputTokens: m.inputTokens + Math.floor(this.rand() * 20),
        outputTokens: m.outputTokens + Math.floor(this.rand() * 40),
      },
    };
  }

  private draw(m: ModelSpec): Fault {
    const mixes = this.phase?.faults[m.model] ?? [];
    let r = this.rand();
    for (const mix of mixes) {
      if (r < mix.p) return mix.fault();
      r -= mix.p;
    }
    return this.success(m);
  }

  private refill(): void {
    const rules: FaultRule[] = [];
    for (const m of MODELS) {
      for (let i = 0; i < this.perModel; i++) rules.push({ match: { model: m.model }, action: this.draw(m) });
    }
    // Catch-alls, reached only if a window runs out before the next refill.
    for (const m of MODELS) {
      const mixes = this.phase?.faults[m.model] ?? [];
      const always = mixes.length > 0 && mixes.reduce((s, x) => s + x.p, 0) >= 1 ? mixes[0]!.fault() : this.success(m);
      rules.push({ match: { model: m.model }, times: Infinity, action: always });
    }
    this.fake.clearRules();
    this.fake.script(...rules);
  }
}
