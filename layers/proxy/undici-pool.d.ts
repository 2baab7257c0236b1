// undici's Pool on its own. The package's index also loads fetch, WebSocket and caches, which the
// proxy never uses: importing the Pool alone keeps about 8 MiB out of the balancer's resident memory.
declare module "undici/lib/dispatcher/pool.js" {
  import type { Pool } from "undici"
  const PoolOnItsOwn: typeof Pool
  export default PoolOnItsOwn
}
