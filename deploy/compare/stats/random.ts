/** A small seeded generator, so that a report's intervals are the same every time its data is. */

/** Uniform draws in [0, 1). */
export type Random = () => number

/** mulberry32: 32 bits of state, fast, and good enough for resampling (not for secrets). */
export const seededRandom = (seed: number): Random => {
  let state = seed | 0
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** FNV-1a of a text: a seed that follows from a row's name, so each row gets its own stream of draws. */
export const seedOf = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

/** log(k!) for k up to the largest n asked so far, grown on demand. */
let logFactorials = new Float64Array([0])
const logFactorial = (k: number): number => {
  if (k >= logFactorials.length) {
    const grown = new Float64Array(Math.max(k + 1, logFactorials.length * 2))
    grown.set(logFactorials)
    for (let i = logFactorials.length; i < grown.length; i++) grown[i] = grown[i - 1]! + Math.log(i)
    logFactorials = grown
  }
  return logFactorials[k]!
}

/** Below this mean a binomial is drawn by inversion from 0, where (1 − p)^n is far from underflow. */
const FROM_ZERO_BELOW = 10

/**
 * An exact Binomial(n, p) draw by inversion: one uniform, spent against the outcomes' probabilities
 * from 0 up when the mean is small, otherwise from the mode outwards, one step up and one down, so
 * that a draw takes about 1.6 standard deviations of steps whatever n is.
 */
export const binomial = (n: number, p: number, random: Random): number => {
  if (n <= 0 || p <= 0) return 0
  if (p >= 1) return n
  if (p > 0.5) return n - binomial(n, 1 - p, random)
  const odds = p / (1 - p)
  let u = random()
  if (n * p < FROM_ZERO_BELOW) {
    let mass = (1 - p) ** n
    let x = 0
    while (u > mass && x < n) {
      u -= mass
      x++
      mass *= ((n - x + 1) / x) * odds
    }
    return x
  }
  const mode = Math.floor((n + 1) * p)
  const atMode = Math.exp(
    logFactorial(n) -
      logFactorial(mode) -
      logFactorial(n - mode) +
      mode * Math.log(p) +
      (n - mode) * Math.log1p(-p),
  )
  u -= atMode
  if (u <= 0) return mode
  let up = mode
  let down = mode
  let massUp = atMode
  let massDown = atMode
  while (up < n || down > 0) {
    if (up < n) {
      up++
      massUp *= ((n - up + 1) / up) * odds
      u -= massUp
      if (u <= 0) return up
    }
    if (down > 0) {
      massDown *= down / (n - down + 1) / odds
      down--
      u -= massDown
      if (u <= 0) return down
    }
  }
  // Only rounding can leave some of u unspent: the mode is the likeliest outcome to give it to.
  return mode
}
