import type {
  DelayFault,
  Fault,
  FaultRule,
  HangFault,
  MalformedJsonFault,
  Platform,
  ProviderName,
  RawBodyFault,
  ResetFault,
  RuleMatch,
  StatusFault,
  StreamCutFault,
  StreamErrorFault,
  SuccessFault,
} from './types';

export interface MatchTarget {
  path: string;
  model?: string;
  provider: ProviderName;
  platform?: Platform;
  stream: boolean;
}

interface ActiveRule {
  match: RuleMatch | undefined;
  remaining: number;
  action: Fault;
}

function pathMatches(pattern: string | RegExp, path: string): boolean {
  if (typeof pattern === 'string') return path === pattern || path.endsWith(pattern);
  pattern.lastIndex = 0; // a /g or /y RegExp keeps state between test() calls
  return pattern.test(path);
}

export function matches(match: RuleMatch | undefined, t: MatchTarget): boolean {
  if (!match) return true;
  if (match.path !== undefined && !pathMatches(match.path, t.path)) return false;
  if (match.model !== undefined && match.model !== t.model) return false;
  if (match.provider !== undefined && match.provider !== t.provider) return false;
  if (match.platform !== undefined && match.platform !== t.platform) return false;
  if (match.stream !== undefined && match.stream !== t.stream) return false;
  return true;
}

/** Ordered fault rules; the first matching rule with remaining uses answers. */
export class RuleBook {
  #rules: ActiveRule[] = [];

  add(rules: FaultRule[]): void {
    for (const r of rules) {
      const times = r.times ?? 1;
      if (!(times >= 0)) throw new TypeError(`FaultRule.times must be >= 0, got ${String(r.times)}`);
      this.#rules.push({ match: r.match, remaining: times, action: r.action });
    }
  }

  clear(): void {
    this.#rules = [];
  }

  /** Consumes one use of the first applicable rule and returns its action. */
  take(t: MatchTarget): Fault | undefined {
    for (const rule of this.#rules) {
      if (rule.remaining > 0 && matches(rule.match, t)) {
        rule.remaining -= 1;
        return rule.action;
      }
    }
    return undefined;
  }
}

export const isStatus = (f: Fault): f is StatusFault => 'status' in f && !('rawBody' in f);
export const isHang = (f: Fault): f is HangFault => 'hang' in f && f.hang === true;
export const isReset = (f: Fault): f is ResetFault => 'reset' in f && f.reset === true;
export const isDelay = (f: Fault): f is DelayFault => 'delayMs' in f;
export const isStreamCut = (f: Fault): f is StreamCutFault => 'streamCutAfter' in f;
export const isStreamError = (f: Fault): f is StreamErrorFault => 'streamErrorAfter' in f;
export const isMalformedJson = (f: Fault): f is MalformedJsonFault => 'malformedJson' in f && f.malformedJson === true;
export const isRawBody = (f: Fault): f is RawBodyFault => 'rawBody' in f;
export const isSuccess = (f: Fault): f is SuccessFault => 'success' in f;
