/** The retry budget: retries stay within their share of requests, plus the reserve. */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { makeRetryBudget } from "../../src/retry-budget.ts"

describe("retry budget", () => {
  it("spends its reserve first, then allows one retry per 1/share requests", () => {
    const budget = makeRetryBudget(0.1, 3)
    expect([budget.withdraw(), budget.withdraw(), budget.withdraw(), budget.withdraw()]).toEqual([
      true,
      true,
      true,
      false,
    ])
    for (let i = 0; i < 9; i++) budget.deposit()
    expect(budget.withdraw()).toBe(false)
    budget.deposit()
    expect(budget.withdraw()).toBe(true)
    expect(budget.withdraw()).toBe(false)
  })

  it("never holds more than its reserve, however quiet the failures", () => {
    const budget = makeRetryBudget(0.5, 2)
    for (let i = 0; i < 1000; i++) budget.deposit()
    expect([budget.withdraw(), budget.withdraw(), budget.withdraw()]).toEqual([true, true, false])
  })

  it.prop(
    "retries never exceed share × requests + reserve",
    [fc.array(fc.boolean(), { maxLength: 2000 }), fc.integer({ min: 0, max: 50 })],
    ([events, burst]) => {
      const share = 0.1
      const budget = makeRetryBudget(share, burst)
      let requests = 0
      let retries = 0
      // true: a request arrives; false: a failure asks for a retry.
      for (const arrives of events) {
        if (arrives) {
          requests++
          budget.deposit()
        } else if (budget.withdraw()) retries++
      }
      expect(retries).toBeLessThanOrEqual(share * requests + burst + 1e-9)
    },
  )
})
