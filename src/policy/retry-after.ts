/** Where a server-requested delay came from; values are the contract's `llm_resilience.retry.delay_source`. */
type RetryAfterSource = "retry-after-ms" | "retry-after";

/** A server-requested delay above this ends the call (`retry_after_too_long`): openai's own cap. */
export const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;

export interface RetryAfter {
  /** Finite and >= 0. */
  ms: number;
  source: RetryAfterSource;
}

// Plain unsigned decimals only: `Number()` alone would also take "", "0x10", "Infinity" and " ".
const DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
// Longer values are never valid (an IMF-fixdate is 29 chars); bail out before any regex work.
const MAX_LEN = 64;

/**
 * The server's requested delay: `retry-after-ms` (float ms) first, else `retry-after` as seconds
 * (float, as the SDKs accept) or an HTTP-date (a past date gives 0). A malformed, negative or
 * non-finite header is ignored, falling through to the next. Caps are the caller's business.
 * Never throws for string input.
 */
export function parseRetryAfter(get: (name: string) => string | null | undefined, now: number): RetryAfter | undefined {
  const msValue = decimal(get("retry-after-ms"));
  if (msValue !== undefined) return { ms: msValue, source: "retry-after-ms" };

  const raw = get("retry-after");
  if (typeof raw !== "string") return undefined;
  const seconds = decimal(raw);
  if (seconds !== undefined) {
    const ms = seconds * 1000;
    return Number.isFinite(ms) ? { ms, source: "retry-after" } : undefined;
  }
  const date = parseHttpDate(raw, now);
  if (date === undefined) return undefined;
  const ms = Math.max(0, date - now);
  return Number.isFinite(ms) ? { ms, source: "retry-after" } : undefined;
}

function decimal(raw: string | null | undefined): number | undefined {
  if (typeof raw !== "string" || raw.length > MAX_LEN) return undefined;
  const s = raw.trim();
  if (!DECIMAL.test(s)) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAY = "(?:mon|tue|wed|thu|fri|sat|sun)";
const LONG_DAY = "(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)";
const MON = "(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)";
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";
// RFC 9110 §5.6.7: IMF-fixdate, then the obsolete RFC 850 and asctime forms recipients must accept.
const IMF = new RegExp(`^${DAY}, (\\d{1,2}) ${MON} (\\d{4}) ${TIME} GMT$`, "i");
const RFC850 = new RegExp(`^${LONG_DAY}, (\\d{1,2})-${MON}-(\\d{2}) ${TIME} GMT$`, "i");
const ASCTIME = new RegExp(`^${DAY} ${MON} +(\\d{1,2}) ${TIME} (\\d{4})$`, "i");

/**
 * An HTTP-date as epoch ms, or undefined. Strict on purpose: V8's `Date.parse` accepts almost
 * anything ("1", "abc 2") and would turn garbage into a date. `now` resolves RFC 850's 2-digit year.
 */
export function parseHttpDate(raw: string, now: number = Date.now()): number | undefined {
  if (raw.length > MAX_LEN) return undefined;
  const s = raw.trim();
  let day: string, mon: string, year: number, time: string[];
  const imf = IMF.exec(s);
  const rfc850 = imf ? null : RFC850.exec(s);
  const asctime = imf || rfc850 ? null : ASCTIME.exec(s);
  if (imf) {
    [day, mon, year, time] = [imf[1]!, imf[2]!, Number(imf[3]), imf.slice(4, 7)];
  } else if (rfc850) {
    [day, mon, year, time] = [rfc850[1]!, rfc850[2]!, 2000 + Number(rfc850[3]), rfc850.slice(4, 7)];
    // A 2-digit year more than 50 years ahead is the most recent past year with those digits.
    const thisYear = Number.isFinite(now) ? new Date(now).getUTCFullYear() : 2000;
    if (year > thisYear + 50) year -= 100;
  } else if (asctime) {
    [mon, day, time, year] = [asctime[1]!, asctime[2]!, asctime.slice(3, 6), Number(asctime[6])];
  } else {
    return undefined;
  }
  const [h, mi, se] = time.map(Number) as [number, number, number];
  if (h > 23 || mi > 59 || se > 60) return undefined;
  const d = Number(day);
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0..99 to 1900..1999.
  date.setUTCFullYear(year, MONTHS.indexOf(mon.toLowerCase()), d);
  // Reject impossible days (Feb 30), which Date silently rolls over.
  if (date.getUTCDate() !== d) return undefined;
  date.setUTCHours(h, mi, Math.min(se, 59), 0); // a leap second counts as :59
  return date.getTime();
}
