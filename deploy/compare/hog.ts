/**
 * The noisy neighbour's CPU hog: a busy loop, run as a child process in a cgroup of its own. It
 * spins in slices and yields between them, so the orphan guard still sees its parent go away.
 */
const SLICE_MS = 50

const spin = () => {
  const until = performance.now() + SLICE_MS
  while (performance.now() < until) {
    // Busy on purpose: this process exists to take CPU from its neighbour.
  }
  setImmediate(spin)
}

spin()
