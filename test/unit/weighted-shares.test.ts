/**
 * Weights set shares whatever the load: equal replicas behind a closed loop of clients (each sends
 * its next request when its last is answered) get shares within 2 points of their weights, from one
 * request in flight to 64, with every algorithm that balances by in-flight counts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { selectorLayers } from "../../layers/selector/registry.ts"
import type { Algorithm } from "../../src/domain/Algorithm.ts"
import type { Endpoint } from "../../src/Endpoint.ts"
import { Selector } from "../../src/Selector.ts"
import { choiceOf, configLayer, endpoints } from "./fakes.ts"

interface Exchange {
  readonly endpoint: Endpoint
  readonly endsAt: number
  readonly durationMs: number
}

/**
 * Shares after `requests` requests with `clients` in flight, each taking 8 to 12 ms on any replica
 * (a fixed pseudo-random sequence). The clock is not moved: only in-flight counts and the exchanges'
 * reported durations differ between replicas.
 */
const closedLoopShares = (
  algorithm: Algorithm,
  weights: ReadonlyArray<number>,
  clients: number,
  requests: number,
) =>
  Effect.gen(function* () {
    const selector = yield* Selector
    const candidates = endpoints(weights.length, weights)
    const choice = choiceOf(candidates)
    const picks = new Map<Endpoint, number>(candidates.map((candidate) => [candidate, 0]))
    let now = 0
    let seed = 1
    const inFlight: Array<Exchange> = []
    const send = () => {
      const { endpoint } = selector.pick(choice)!
      picks.set(endpoint, picks.get(endpoint)! + 1)
      endpoint.active++
      seed = (seed * 16_807) % 2_147_483_647
      const durationMs = 8 + (4 * seed) / 2_147_483_647
      inFlight.push({ endpoint, endsAt: now + durationMs, durationMs })
    }
    for (let i = 0; i < clients; i++) send()
    for (let i = clients; i < requests; i++) {
      inFlight.sort((a, b) => a.endsAt - b.endsAt)
      const done = inFlight.shift()!
      now = done.endsAt
      done.endpoint.active--
      selector.observe(done.endpoint, done.durationMs, true)
      send()
    }
    return candidates.map((candidate) => picks.get(candidate)! / requests)
  }).pipe(Effect.provide(selectorLayers[algorithm].pipe(Layer.provide(configLayer()))))

describe("weighted shares", () => {
  for (const algorithm of ["round-robin", "lease", "hybrid", "adaptive"] as const) {
    for (const weights of [
      [3, 1],
      [5, 1],
      [3, 2, 1],
    ]) {
      it.effect(`${algorithm}, weights ${weights.join(":")}: within 2 points at 1 to 64 in flight`, () =>
        Effect.gen(function* () {
          const total = weights.reduce((sum, weight) => sum + weight, 0)
          for (const clients of [1, 2, 3, 4, 8, 16, 32, 64]) {
            const shares = yield* closedLoopShares(algorithm, weights, clients, 20_000)
            shares.forEach((share, i) => {
              expect(
                Math.abs(share - weights[i]! / total),
                `${clients} in flight, replica ${i + 1}`,
              ).toBeLessThan(0.02)
            })
          }
        }),
      )
    }
  }
})
