/** Memory stress: buffers held, every page written so the resident set really grows, and given back after. */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

const MIB = 1024 * 1024

/**
 * Most of the memory is held in chunks larger than glibc's 32 MiB ceiling for its mmap threshold, so
 * each is its own mapping and freeing it returns it to the kernel at once. MiB-sized chunks alone do
 * not: once one is freed, glibc raises the threshold and later ones come from the heap, where a small
 * allocation above them keeps them resident after they are freed.
 */
const LARGE_MB = 64

/**
 * At most this much is allocated per call: filling memory costs time on the event loop, and the server
 * must keep answering while a large target is reached over a few ticks.
 */
const MAX_STEP_MB = 128

/**
 * V8 frees a dropped buffer's memory at its next garbage collection, and an idle server may not have
 * one for minutes: an agent would go on seeing the stress after it stopped. So when memory is given
 * back, a collection is asked for, through the `gc` function V8 gives a new context once the flag is
 * set; without it, memory comes back whenever V8 next collects.
 */
const collectGarbage: () => void = (() => {
  try {
    setFlagsFromString("--expose-gc")
    const gc: unknown = runInNewContext("gc")
    return typeof gc === "function" ? () => gc() : () => {}
  } catch {
    return () => {}
  }
})()

// allocUnsafeSlow: outside the shared pool, so dropping a chunk frees it. The fill writes every page:
// memory from the kernel is mapped lazily and would not count in RSS until touched.
const allocate = (mb: number): Buffer => Buffer.allocUnsafeSlow(mb * MIB).fill(0x5a)

export class MemoryBallast {
  private readonly large: Array<Buffer> = []
  private readonly small: Array<Buffer> = []

  /** Moves the held memory toward `mb` (rounded to whole MiB), by at most MAX_STEP_MB per call. */
  setMb(mb: number): void {
    const wanted = Math.max(0, Math.round(mb))
    const wantedLarge = Math.floor(wanted / LARGE_MB)
    const wantedSmall = wanted - wantedLarge * LARGE_MB
    let budget = MAX_STEP_MB
    let released = false
    while (this.large.length < wantedLarge && budget >= LARGE_MB) {
      this.large.push(allocate(LARGE_MB))
      budget -= LARGE_MB
      // A large chunk takes over from the small ones it replaces as soon as it exists.
      if (this.small.length > 0) {
        this.small.length = 0
        released = true
      }
    }
    if (this.large.length > wantedLarge) {
      this.large.length = wantedLarge
      released = true
    }
    // While large chunks are still missing, small ones stand in for them, so a ramp grows smoothly.
    const smallTarget = this.large.length < wantedLarge ? this.small.length : wantedSmall
    while (this.small.length < smallTarget && budget > 0) {
      this.small.push(allocate(1))
      budget--
    }
    if (this.small.length > smallTarget) {
      this.small.length = smallTarget
      released = true
    }
    if (released) collectGarbage()
  }

  heldMb(): number {
    return this.large.length * LARGE_MB + this.small.length
  }
}
