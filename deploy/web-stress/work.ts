/** The CPU work a request costs: a Monte Carlo estimate of pi, run on the calling thread. */

/** Points drawn in the unit square; the share inside the quarter circle, times 4, estimates pi. */
export const monteCarloPi = (iterations: number): number => {
  let inside = 0
  for (let i = 0; i < iterations; i++) {
    const x = Math.random()
    const y = Math.random()
    if (x * x + y * y <= 1) inside++
  }
  return iterations === 0 ? 0 : (4 * inside) / iterations
}
