/** Tie-breaking shared by the selectors: among equal values, the choice takes turns. */

/**
 * Index of the smallest `valueAt(i)` for i in [0, count), scanning from `start` so that ties go to
 * the first minimum after a rotating offset. With "first of the minimum" every tie (e.g. all lease
 * counts 0 at low concurrency) would go to replica 0.
 */
export const argminFrom = (count: number, start: number, valueAt: (index: number) => number): number => {
  let best = start % count
  let bestValue = valueAt(best)
  for (let step = 1; step < count; step++) {
    const index = (start + step) % count
    const value = valueAt(index)
    if (value < bestValue) {
      best = index
      bestValue = value
    }
  }
  return best
}

/** A counter that hands out rotation offsets. */
export const makeTurns = () => {
  let turn = 0
  return (): number => {
    const current = turn
    turn = (turn + 1) % Number.MAX_SAFE_INTEGER
    return current
  }
}
