/** Deterministic pseudo-random bytes, generated the same way by replicas and tests so bodies can be hashed. */
import { createHash } from "node:crypto"
import { Readable } from "node:stream"

const BLOCK_BYTES = 64 * 1024

/** Block `index` of the pattern: xorshift32 seeded by the index, so any block is made without the others. */
const block = (index: number): Buffer => {
  const words = new Uint32Array(BLOCK_BYTES / 4)
  let state = (Math.imul(index + 1, 0x9e3779b1) ^ 0x5bd1e995) >>> 0 || 1
  for (let i = 0; i < words.length; i++) {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    words[i] = state
  }
  return Buffer.from(words.buffer)
}

/** The first `bytes` bytes of the pattern as a stream, one block per read so backpressure is honoured. */
export const patternStream = (bytes: number): Readable => {
  let index = 0
  return new Readable({
    read() {
      const offset = index * BLOCK_BYTES
      if (offset >= bytes) {
        this.push(null)
        return
      }
      const chunk = block(index++)
      this.push(offset + BLOCK_BYTES <= bytes ? chunk : chunk.subarray(0, bytes - offset))
    },
  })
}

/** SHA-256 (hex) of the first `bytes` bytes of the pattern, computed without a stream. */
export const patternSha256 = (bytes: number): string => {
  const hash = createHash("sha256")
  for (let offset = 0, index = 0; offset < bytes; offset += BLOCK_BYTES, index++) {
    const chunk = block(index)
    hash.update(offset + BLOCK_BYTES <= bytes ? chunk : chunk.subarray(0, bytes - offset))
  }
  return hash.digest("hex")
}
