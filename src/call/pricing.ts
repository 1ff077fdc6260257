import type { Options } from "../config.js";
import { localSpendStore } from "../policy/local-spend-cell.js";
import type { SpendStore } from "../policy/spend-cell.js";
import { SpendLimit } from "../policy/spend-limit.js";
import type { StateStore } from "../policy/store.js";
import { costParts, PriceBook } from "../pricing/price-book.js";
import type { PriceEntry } from "../pricing/price-table.js";
import type { Usage } from "../providers/types.js";
import type { CallPricing, ResponseCost } from "../telemetry/call-recorder.js";
import { log } from "../telemetry/logger.js";

/** Prices responses for every call (no per-call state); warns once per model it cannot price. */
export class Pricing implements CallPricing {
  private readonly warned = new Set<string>();

  constructor(readonly book: PriceBook) {}

  /** The price of a call's response, or of a request to `model` when no response model is known. */
  priceOf(responseModel: string | undefined, model: string | undefined): PriceEntry | undefined {
    const price = this.book.priceOf(responseModel, model);
    if (!price) this.unpriced(responseModel ?? model);
    return price;
  }

  cost(usage: Usage, responseModel: string | undefined, attemptModel: string | undefined): ResponseCost | undefined {
    const price = this.priceOf(responseModel, attemptModel);
    return price && costParts(price, usage);
  }

  ended(): void {}

  private unpriced(model: string | undefined): void {
    if (model === undefined || this.warned.has(model) || this.warned.size >= 100) return;
    this.warned.add(model);
    log().warn(
      { model },
      `llm-resilience: no price for model "${model}": its calls get no llm_resilience.cost.usd and do not count against a spend limit; add it with LLM_RESILIENCE_PRICES or the prices option`,
    );
  }
}

export interface CallCharges {
  pricing: Pricing;
  /** Undefined without a spend limit. */
  spend: SpendLimit<any> | undefined;
}

let current: { options: Options; store: StateStore<any>; charges: CallCharges } | undefined;

/**
 * The price book and spend limit of the current options and store, built once: a new registration
 * keeps the spend window when its limit, window and store are unchanged.
 */
export function chargesFor(options: Options, store: StateStore<any>): CallCharges {
  if (current && current.options === options && current.store === store) return current.charges;
  const prev = current;
  const pricing = prev && prev.options.prices === options.prices ? prev.charges.pricing : new Pricing(new PriceBook(options.prices));
  const l = options.spendLimit;
  let spend: SpendLimit<any> | undefined;
  if (l) {
    const old = prev?.charges.spend;
    spend =
      old && prev.store === store && old.limitUsd === l.usd && old.windowMs === l.windowMs
        ? old
        : new SpendLimit<any>("all", { limitUsd: l.usd, windowMs: l.windowMs, store: spendStoreOf(store) });
  }
  current = { options, store, charges: { pricing, spend } };
  return current.charges;
}

function spendStoreOf(store: StateStore<any>): SpendStore<any> {
  return typeof (store as Partial<SpendStore<any>>).spend === "function" ? (store as unknown as SpendStore<any>) : localSpendStore;
}
