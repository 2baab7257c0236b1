/**
 * The client's address for rate limiting: the socket's peer, unless that peer is a proxy the operator
 * trusts (`TRUSTED_PROXIES`). Only then is `X-Forwarded-For` read, from the right, past the trusted
 * proxies: the first address no trusted proxy wrote is the one the last trusted proxy saw. Reading
 * from the left would let any client pick its own key by sending the header itself.
 */
import { BlockList, isIP } from "node:net"

/** Addresses and CIDR blocks whose `X-Forwarded-For` is believed. */
export type TrustedProxies = BlockList

export const TRUSTED_PROXIES_EXPECTED =
  "comma-separated IP addresses or CIDR blocks, such as 10.0.0.0/8,192.168.1.7"

/** `::ffff:10.0.0.1`, as a dual-stack socket reports an IPv4 peer, is `10.0.0.1`. */
export const plainAddress = (address: string): string =>
  address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address

const familyOf = (address: string): "ipv4" | "ipv6" | undefined => {
  const version = isIP(address)
  return version === 4 ? "ipv4" : version === 6 ? "ipv6" : undefined
}

/** The blocks in `entries`; undefined when one is not an address or a CIDR block. */
export const parseTrustedProxies = (entries: ReadonlyArray<string>): TrustedProxies | undefined => {
  const list = new BlockList()
  for (const entry of entries) {
    const [address = "", prefixText, extra] = entry.split("/")
    const family = familyOf(address)
    if (family === undefined || extra !== undefined) return undefined
    if (prefixText === undefined) {
      list.addAddress(address, family)
      continue
    }
    const prefix = Number(prefixText)
    const bits = family === "ipv4" ? 32 : 128
    if (!/^\d+$/.test(prefixText) || prefix > bits) return undefined
    list.addSubnet(address, prefix, family)
  }
  return list
}

const isTrusted = (trusted: TrustedProxies, address: string): boolean => {
  const family = familyOf(address)
  return family !== undefined && trusted.check(address, family)
}

/** The client's address, given the socket's peer and the request's `X-Forwarded-For`. */
export const clientIpOf = (
  peer: string | undefined,
  forwardedFor: string | ReadonlyArray<string> | undefined,
  trusted: TrustedProxies | undefined,
): string => {
  const socket = peer === undefined ? "unknown" : plainAddress(peer)
  if (trusted === undefined || forwardedFor === undefined || !isTrusted(trusted, socket)) return socket
  const hops = (typeof forwardedFor === "string" ? forwardedFor : forwardedFor.join(","))
    .split(",")
    .map((hop) => plainAddress(hop.trim()))
    .filter((hop) => hop !== "")
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!isTrusted(trusted, hops[i]!)) return hops[i]!
  }
  // Every hop is a trusted proxy: the first of them is as far back as the chain goes.
  return hops[0] ?? socket
}
