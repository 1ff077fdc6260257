import type { ResilienceOptions } from "../config.js";
import { InvalidRequestError, SpendLimitError } from "../errors.js";
import { estimateTokens } from "../policy/rate-limiter.js";
import type { SpendDecision } from "../policy/spend-cell.js";
import type { SpendLimit } from "../policy/spend-limit.js";
import { worstCaseCost } from "../pricing/price-book.js";
import type { Operation, ProviderAdapter, RequestCheck, Usage } from "../providers/types.js";
import { modelProblems, overflowsContext } from "../providers/validate-request.js";
import type { Runtime } from "../runtime.js";
import type { CallPricing, CallRecorder, ResponseCost } from "../telemetry/call-recorder.js";
import { chargesFor, type Pricing } from "./pricing.js";

/** How a Preflight reads the request it checks: the call's provider adapter (SDK or AI SDK shape). */
type RequestReader = Pick<ProviderAdapter, "requestInput" | "requestedOutputTokens" | "checkRequest">;

/** The hold an exempt call settles: never reserved, so settling it only records the call's cost. */
const EXEMPT_HOLD = "exempt";

/** Output assumed for a request without max tokens to a model whose output limit is unknown. */
const DEFAULT_OUTPUT_TOKENS = 32_768;

/** Why a request must not leave: validation or the spend limit gives up, or the input is over the model's context window. */
export type PreflightStop =
  | { readonly kind: "context_overflow"; readonly error: InvalidRequestError }
  | { readonly kind: "give_up"; readonly reason: "invalid_request" | "spend_limit"; readonly errorType: string; readonly error: Error };

/**
 * The checks before a call's first request to each model: request validation (opt-in) and the
 * spend limit's reservation of the worst-case cost. It also prices the call's responses for its
 * recorder, and replaces the reservation with what the call cost when it ends.
 */
export class Preflight implements CallPricing {
  private readonly check: RequestCheck | undefined;
  private hold: string | undefined;
  private heldUsd = 0;
  private inputTokens: number | undefined;

  constructor(
    private readonly reader: RequestReader,
    private readonly op: Operation,
    private readonly body: unknown,
    private readonly pricing: Pricing,
    private readonly spend: SpendLimit<any> | undefined,
    validate: boolean,
    /** Never refused by the spend limit (a `withPolicies` scope's `spendLimit: false`); its cost still counts. */
    private readonly exempt = false,
  ) {
    this.check = validate ? reader.checkRequest(op, body) : undefined;
  }

  admit(model: string | undefined, recorder: CallRecorder): PreflightStop | undefined | Promise<PreflightStop | undefined> {
    const c = this.check;
    if (c) {
      const limits = model !== undefined ? this.pricing.book.limitsOf(model) : undefined;
      const problems = c.problems.length > 0 ? c.problems : model !== undefined ? modelProblems(c, model, limits) : [];
      if (problems.length > 0)
        return { kind: "give_up", reason: "invalid_request", errorType: "invalid_request_error", error: new InvalidRequestError(problems) };
      if (overflowsContext(c, limits)) {
        const problem = `input: at least ${c.minInputTokens} tokens, above the context window of ${model} (${limits!.contextWindow})`;
        return { kind: "context_overflow", error: new InvalidRequestError([problem], "context_length_exceeded") };
      }
    }
    if (!this.spend || this.exempt || model === undefined) return undefined;
    const price = this.pricing.priceOf(undefined, model);
    if (!price) return undefined;
    this.inputTokens ??= estimateTokens(this.reader.requestInput(this.op, this.body));
    const output = this.reader.requestedOutputTokens(this.op, this.body) ?? price.maxOutputTokens ?? DEFAULT_OUTPUT_TOKENS;
    const estimate = worstCaseCost(price, this.inputTokens, output);
    const need = estimate - this.heldUsd;
    if (need <= 0) return undefined;
    const d = this.spend.reserve(need, this.hold);
    const decided = (r: SpendDecision): PreflightStop | undefined => {
      if (r.admitted) {
        this.hold = r.hold;
        this.heldUsd += need;
        return undefined;
      }
      const limit = this.spend!.limitUsd;
      recorder.spendRejected(limit, r.spentUsd, r.reservedUsd, estimate, model);
      return {
        kind: "give_up",
        reason: "spend_limit",
        errorType: "spend_limit",
        error: new SpendLimitError(r.retryAtMs, limit, r.spentUsd, estimate, r.reservedUsd),
      };
    };
    return isThenable(d) ? d.then(decided) : decided(d);
  }

  cost(usage: Usage, responseModel: string | undefined, attemptModel: string | undefined): ResponseCost | undefined {
    return this.pricing.cost(usage, responseModel, attemptModel);
  }

  ended(totalUsd: number): void {
    const hold = this.hold ?? (this.exempt ? EXEMPT_HOLD : undefined);
    if (hold === undefined || !this.spend) return;
    this.hold = undefined;
    // An exempt call held nothing: settling a hold that does not exist records its cost as spent.
    const r = this.spend.settle(hold, totalUsd);
    if (isThenable(r)) r.catch(() => {});
  }
}

/**
 * What prices a call's responses, and its Preflight when validation (`options.validate`, the call's
 * own options) or the runtime's spend limit is on: the Preflight then prices the call too.
 */
export function preflightFor(
  rt: Runtime,
  options: ResilienceOptions,
  adapter: RequestReader,
  op: Operation,
  body: unknown,
): { preflight: Preflight | undefined; pricing: CallPricing } {
  const charges = chargesFor(rt.options, rt.store);
  const validate = options.validate === true;
  if (!validate && !charges.spend) return { preflight: undefined, pricing: charges.pricing };
  const preflight = new Preflight(adapter, op, body, charges.pricing, charges.spend, validate, options.exemptFromSpendLimit === true);
  return { preflight, pricing: preflight };
}

function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === "function";
}
