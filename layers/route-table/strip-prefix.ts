/**
 * A route's `strip-prefix`: `/api` sends `/api/users?id=1` to the replica as `/users?id=1`, and
 * `/api` as `/`. Only whole path segments are stripped, so `/apiary` is left as it is.
 */
const identity = (url: string) => url

export const upstreamPathOf = (prefix: string | undefined): ((url: string) => string) => {
  if (prefix === undefined) return identity
  const stem = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix
  if (stem === "") return identity
  return (url) => {
    if (!url.startsWith(stem)) return url
    const rest = url.slice(stem.length)
    if (rest === "" || rest[0] === "?") return `/${rest}`
    return rest[0] === "/" ? rest : url
  }
}
