/** What the spend and validation suites, for SDK and AI SDK calls alike, assert of a call refused before sending. */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { InvalidRequestError, SpendLimitError } from "../../src/index.ts";

/** `a` is the number `b`, within floating-point rounding. */
export const close = (a: unknown, b: number, what = "") => assert.ok(typeof a === "number" && Math.abs(a - b) < 1e-12, `${what} ${a} ≉ ${b}`);

/** What one gpt-4o call costs at 2.50 / 10 USD per million tokens for the fake provider's usage (11 in, 7 out). */
export const GPT4O_CALL_USD = (11 * 2.5 + 7 * 10) / 1e6;

export interface RunawayLoop {
  attempted: number;
  refused: number;
  sent: number;
  spent: number;
  firstRefusal: SpendLimitError;
}

/**
 * Makes 200 calls one after the other under a spend limit of `limitUsd`, each costing `callUsd` when sent,
 * and asserts what any runaway loop must show: every call either reached the provider or was refused
 * before sending (with a SpendLimitError), the loop was admitted and then stopped, spend stayed within the
 * limit, it stopped only when the next call's worst case no longer fit, and the refusal says what was spent.
 */
export async function runawayLoop(
  t: TestContext,
  call: () => Promise<unknown>,
  o: { limitUsd: number; callUsd: number; requestsSeen: () => number },
): Promise<RunawayLoop> {
  let attempted = 0;
  let refused = 0;
  let firstRefusal: SpendLimitError | undefined;
  for (let i = 0; i < 200; i++) {
    attempted++;
    try {
      await call();
    } catch (e) {
      assert.ok(e instanceof SpendLimitError, String(e));
      refused++;
      firstRefusal ??= e;
    }
  }
  const sent = o.requestsSeen();
  const spent = sent * o.callUsd;
  t.diagnostic(
    `calls attempted ${attempted}, requests the provider saw ${sent}, refused ${refused}, spent ${spent.toFixed(6)} USD of ${o.limitUsd.toFixed(6)}`,
  );
  assert.equal(sent + refused, attempted, "every call either reached the provider or was refused before sending");
  assert.ok(refused > 0 && sent > 50, `the loop was admitted (${sent}) then stopped (${refused})`);
  const e = firstRefusal!;
  assert.ok(spent <= o.limitUsd, "spend stayed within the limit");
  assert.ok(spent + e.estimateUsd > o.limitUsd, "it stopped only when the next call's worst case no longer fit");
  close(e.spentUsd, spent, "error.spentUsd");
  assert.equal(e.limitUsd, o.limitUsd);
  return { attempted, refused, sent, spent, firstRefusal: e };
}

/** Sends `call` and expects an InvalidRequestError naming `problem`, with nothing sent to the provider. */
export async function expectInvalidRequest(call: () => Promise<unknown>, problem: RegExp, requestsSeen: () => number): Promise<InvalidRequestError> {
  const err = await call().then(
    () => assert.fail("the call was sent"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof InvalidRequestError, String(err));
  assert.ok(
    err.problems.some((p) => problem.test(p)),
    `problems: ${err.problems.join(" | ")}`,
  );
  assert.equal(requestsSeen(), 0, "nothing was sent");
  return err;
}
