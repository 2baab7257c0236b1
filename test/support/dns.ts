/**
 * A DNS server on a loopback address that answers A queries for the names the test sets (as Swarm's
 * embedded DNS answers `tasks.<service>`), and a way to run a process that resolves through it alone:
 * a private mount namespace whose /etc/resolv.conf names this server, so nothing else is asked and the
 * machine's own files are never touched.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { waitFor } from "./wait.ts"

/** What the server answers for a name: its addresses, or SERVFAIL (a resolver in trouble). */
export type DnsAnswer = ReadonlyArray<string> | "fail"

export interface DnsServer {
  /** The loopback address it listens on, port 53. */
  readonly address: string
  readonly answer: (name: string, answer: DnsAnswer) => void
  /** A queries received for `name`, and how many of them got SERVFAIL. */
  readonly queries: (name: string) => { readonly total: number; readonly failed: number }
  /**
   * The command prefix that runs a program with this server as its only resolver: a mount namespace
   * with a resolv.conf of its own bound over /etc/resolv.conf (needs root, as the Docker tests do).
   */
  readonly isolate: ReadonlyArray<string>
  readonly stop: () => Promise<void>
}

const TYPE_A = 1
const CLASS_IN = 1
const RCODE_SERVFAIL = 2
const RCODE_NXDOMAIN = 3

interface Question {
  readonly name: string
  readonly type: number
  /** The byte after the question, where answers start. */
  readonly end: number
}

/** The first question of a query (RFC 1035 §4.1.2); queries never use compression pointers. */
const questionOf = (query: Buffer): Question | undefined => {
  const labels: Array<string> = []
  let offset = 12
  while (offset < query.length) {
    const length = query[offset]!
    offset++
    if (length === 0) break
    if (length > 63) return undefined
    labels.push(query.toString("latin1", offset, offset + length))
    offset += length
  }
  if (offset + 4 > query.length) return undefined
  return { name: labels.join(".").toLowerCase(), type: query.readUInt16BE(offset), end: offset + 4 }
}

const reply = (query: Buffer, question: Question, rcode: number, addresses: ReadonlyArray<string>) => {
  const header = Buffer.alloc(12)
  header.writeUInt16BE(query.readUInt16BE(0), 0)
  // QR, the query's opcode and RD, AA, RA, and the response code.
  header.writeUInt16BE(0x8000 | (query.readUInt16BE(2) & 0x7900) | 0x0480 | rcode, 2)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(addresses.length, 6)
  const answers = addresses.map((address) => {
    const record = Buffer.alloc(16)
    // The name is a pointer to the question's, at offset 12; TTL 0, so no resolver keeps it.
    record.writeUInt16BE(0xc00c, 0)
    record.writeUInt16BE(TYPE_A, 2)
    record.writeUInt16BE(CLASS_IN, 4)
    record.writeUInt32BE(0, 6)
    record.writeUInt16BE(4, 10)
    address.split(".").forEach((octet, index) => {
      record[12 + index] = Number(octet)
    })
    return record
  })
  return Buffer.concat([header, query.subarray(12, question.end), ...answers])
}

const bind = (socket: UdpSocket, address: string) =>
  new Promise<void>((resolve, reject) => {
    socket.once("error", reject)
    socket.bind(53, address, () => {
      socket.off("error", reject)
      resolve()
    })
  })

/** Starts the server on the first free one of a few loopback addresses, with its resolv.conf beside it. */
export const startDnsServer = async (): Promise<DnsServer> => {
  const answers = new Map<string, DnsAnswer>()
  const counts = new Map<string, { total: number; failed: number }>()
  const { socket, address } = await waitFor(
    "a loopback address with port 53 free",
    async () => {
      // Outside the replicas' range (127.0.0.2 up) and the fake agent's 127.0.0.254.
      const address = `127.0.53.${1 + Math.floor(Math.random() * 250)}`
      const socket = createSocket("udp4")
      try {
        await bind(socket, address)
        return { socket, address }
      } catch {
        socket.close()
        return undefined
      }
    },
    { timeoutMs: 5_000, intervalMs: 10 },
  )
  socket.on("message", (query, peer) => {
    const question = questionOf(query)
    if (question === undefined) return
    const answer = answers.get(question.name)
    const count = counts.get(question.name) ?? { total: 0, failed: 0 }
    counts.set(question.name, count)
    let response: Buffer
    if (answer === undefined) response = reply(query, question, RCODE_NXDOMAIN, [])
    else if (answer === "fail") {
      if (question.type === TYPE_A) count.failed++
      response = reply(query, question, RCODE_SERVFAIL, [])
    } else response = reply(query, question, 0, question.type === TYPE_A ? answer : [])
    if (question.type === TYPE_A) count.total++
    socket.send(response, peer.port, peer.address)
  })

  const folder = await mkdtemp(join(tmpdir(), "swarmguard-dns-"))
  const resolvConf = join(folder, "resolv.conf")
  // One quick try: a failed lookup should fail fast, not after glibc's default 5 s × 2.
  await writeFile(resolvConf, `nameserver ${address}\noptions timeout:1 attempts:1\n`)
  const isolate = [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--",
    "sh",
    "-c",
    'mount --bind "$0" /etc/resolv.conf && exec "$@"',
    resolvConf,
  ]

  return {
    address,
    answer: (name, answer) => {
      answers.set(name.toLowerCase(), answer)
    },
    queries: (name) => ({ ...(counts.get(name.toLowerCase()) ?? { total: 0, failed: 0 }) }),
    isolate,
    stop: async () => {
      await new Promise<void>((resolve) => socket.close(() => resolve()))
      await rm(folder, { recursive: true, force: true })
    },
  }
}
