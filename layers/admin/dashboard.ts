/**
 * The live page at `/_lb/dashboard`: one self-contained HTML document (inline CSS and script, nothing
 * fetched but the balancer's own JSON endpoints), built once so serving it costs a buffer write.
 */
import { createHash } from "node:crypto"

const STYLE = `
:root{color-scheme:light;--bg:#f5f6f8;--card:#fff;--ink:#1d2433;--dim:#6b7385;--line:#e2e5eb;--ok:#17803d;--bad:#c0262d;--warn:#a15c00;--accent:#2f6fde}
*{box-sizing:border-box}
body{margin:0;padding:20px 24px;background:var(--bg);color:var(--ink);font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;align-items:baseline;gap:16px;margin-bottom:16px}
#route{font:inherit;padding:2px 6px}
h1{font-size:20px;margin:0}
#status{padding:3px 10px;border-radius:12px;font-size:13px;background:var(--line)}
#status[data-state=live]{background:#dcf2e3;color:var(--ok)}
#status[data-state=down]{background:#fbe0e1;color:var(--bad);font-weight:600}
body.down main{opacity:.45}
#summary{display:grid;grid-template-columns:repeat(auto-fill,minmax(118px,1fr));gap:10px;margin-bottom:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 12px}
.card dt{color:var(--dim);font-size:12px}
.card dd{margin:2px 0 0;font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:8px}
th,td{padding:7px 10px;text-align:left;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--dim);font-weight:500;font-size:12px}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.n{white-space:nowrap}
.sub{color:var(--dim);font-size:12px;max-width:260px;overflow-wrap:anywhere}
.ok{color:var(--ok)}.bad{color:var(--bad)}.stale{color:var(--warn)}
svg{display:block}
.spark rect{fill:#eef1f6}.spark path.area{fill:#cddcf7}.spark path.line{fill:none;stroke:var(--accent);stroke-width:1.5}
`

const SCRIPT = `
"use strict";
const METRICS_PATH = __METRICS_PATH__;
const POLL_MS = 1000, TIMEOUT_MS = 2500, WINDOW_MS = 60000, W = 120, H = 28;
const rows = new Map();
const $ = (id) => document.getElementById(id);
const num = (x, digits) => x == null || !Number.isFinite(x) ? "\\u2013"
  : x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ageText = (ms) => ms < 1000 ? num(ms, 0) + " ms" : ms < 120000 ? num(ms / 1000, 1) + " s" : num(ms / 60000, 0) + " min";
const get = async (path) => {
  const reply = await fetch(path, { cache: "no-store", signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!reply.ok) throw new Error(path + " answered " + reply.status);
  return reply.json();
};
const el = (tag, cls, parent) => {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (parent) parent.appendChild(node);
  return node;
};
const svg = (tag, parent) => parent.appendChild(document.createElementNS("http://www.w3.org/2000/svg", tag));
const set = (node, text, cls) => { node.textContent = text; if (cls !== undefined) node.className = cls; };

// A replica in two routes has an endpoint, and a row, in each.
function rowFor(route, id) {
  const key = route + "/" + id;
  let row = rows.get(key);
  if (row) return row;
  const tr = document.createElement("tr");
  tr.dataset.id = id;
  tr.dataset.route = route;
  const cell = (cls) => el("td", cls, tr);
  const two = (cls) => { const td = cell(cls); return [el("div", "", td), el("div", "sub", td)]; };
  const [name, idText] = two("replica");
  const node = cell("node");
  const [health, error] = two("health");
  const leases = cell("leases n"), rate = cell("picks n");
  const chart = svg("svg", cell("spark"));
  chart.setAttribute("viewBox", "0 0 " + W + " " + H);
  chart.setAttribute("width", W); chart.setAttribute("height", H);
  // The whole minute is drawn, so a chart that has only begun reads as recent data, not a glitch.
  const frame = svg("rect", chart);
  frame.setAttribute("width", W); frame.setAttribute("height", H); frame.setAttribute("rx", 3);
  const area = svg("path", chart), line = svg("path", chart);
  area.setAttribute("class", "area"); line.setAttribute("class", "line");
  const cpu = cell("cpu n"), memory = cell("memory n"), network = cell("network n");
  const [age, fresh] = two("age n");
  const score = cell("score n");
  const reportedRif = cell("reported-rif n"), reportedCpu = cell("reported-cpu n"), reportAge = cell("report-age n");
  row = { tr, name, idText, node, health, error, leases, rate, area, line, cpu, memory, network, age, fresh, score, reportedRif, reportedCpu, reportAge, picks: null, at: 0, points: [] };
  rows.set(key, row);
  return row;
}

function draw(row, now, max) {
  const x = (at) => ((at - now + WINDOW_MS) / WINDOW_MS * W).toFixed(1);
  const y = (rate) => (H - 1 - rate / max * (H - 3)).toFixed(1);
  const line = row.points.map((p, i) => (i ? "L" : "M") + x(p.at) + " " + y(p.rate)).join("");
  row.line.setAttribute("d", line);
  row.area.setAttribute("d", line ? line + "L" + x(row.points[row.points.length - 1].at) + " " + H + "L" + x(row.points[0].at) + " " + H + "Z" : "");
}

/** With more than one route, a selector narrows the page to one; its choice survives reloads of the routes. */
function chooseRoute(metrics) {
  const select = $("route");
  const names = Object.keys(metrics.routes || {}).sort();
  select.hidden = names.length < 2;
  const wanted = ["", ...names];
  if ([...select.options].map((o) => o.value).join("\\n") !== wanted.join("\\n")) {
    const kept = select.value;
    select.replaceChildren(...wanted.map((name) => {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name === "" ? "all routes (" + names.length + ")" : "route " + name;
      return option;
    }));
    select.value = wanted.includes(kept) ? kept : "";
  }
  return names.length < 2 ? "" : select.value;
}

function render(metrics, replicas, health, now) {
  const route = chooseRoute(metrics);
  const own = route === "" ? metrics : metrics.routes[route];
  set($("algorithm"), own.algorithm);
  set($("total-requests"), num(own.total_requests, 0));
  set($("rps"), num(own.requests_per_second, 1));
  const shown = route === "" ? replicas : replicas.filter((r) => r.route === route);
  const healthy = route === "" ? health.replicas_healthy : shown.filter((r) => r.healthy).length;
  set($("healthy"), healthy + " / " + (route === "" ? health.replicas_known : shown.length));
  set($("active-leases"), num(metrics.leases.active, 0));
  set($("fallbacks"), num(metrics.fallback_decisions, 0));
  set($("panics"), num(metrics.panic_decisions, 0), metrics.panic_decisions > 0 ? "bad" : "");
  set($("cache-hit"), metrics.cache_hit_rate == null ? "n/a" : num(metrics.cache_hit_rate * 100, 1) + " %");
  set($("routing-time"), num(metrics.avg_routing_time_ms * 1000, 1) + " \\u00b5s");
  const seen = new Set();
  const body = $("replicas");
  for (const r of shown) {
    const row = rowFor(r.route, r.id);
    seen.add(row);
    // Picks per second come from the counter's growth between two polls; a drop means a restart.
    if (row.picks !== null && r.picks >= row.picks && now > row.at) {
      row.points.push({ at: now, rate: (r.picks - row.picks) / ((now - row.at) / 1000) });
    }
    row.picks = r.picks; row.at = now;
    row.points = row.points.filter((p) => p.at > now - WINDOW_MS);
    const last = row.points[row.points.length - 1];
    set(row.name, r.name); set(row.idText, r.id === r.name ? r.origin : r.id);
    set(row.node, r.node ?? "\\u2013");
    const state = !r.healthy ? "unhealthy" : r.ejected ? "ejected" : "healthy";
    set(row.health, "\\u25cf " + state, state === "healthy" ? "ok" : "bad");
    set(row.error, r.last_error ? r.last_error + (r.consecutive_failures ? " (\\u00d7" + r.consecutive_failures + ")" : "") : "");
    set(row.leases, num(r.active_leases, 0));
    set(row.rate, last ? num(last.rate, 1) : "\\u2013");
    const m = r.metrics;
    set(row.cpu, m ? num(m.cpu_percent, 1) + " %" : "\\u2013");
    set(row.memory, m ? num(m.memory_percent, 1) + " %" : "\\u2013");
    set(row.network, m ? num(m.network_mbps, 2) : "\\u2013");
    set(row.age, m ? ageText(m.age_ms) : "no metrics");
    set(row.fresh, m ? (m.fresh ? "fresh" : "stale") : "", m ? (m.fresh ? "sub ok" : "sub stale") : "sub");
    set(row.score, r.score == null ? "\\u2013" : num(r.score, 1));
    // The replica's own report (endpoint-load-metrics), when it sends one; num() shows a missing figure as a dash.
    const lr = r.load_report;
    set(row.reportedRif, num(lr && lr.named_metrics ? lr.named_metrics.rif : null, 0));
    set(row.reportedCpu, lr && lr.cpu_utilization != null ? num(lr.cpu_utilization * 100, 1) + " %" : "\\u2013");
    set(row.reportAge, lr ? ageText(lr.age_ms) : "\\u2013");
    body.appendChild(row.tr);
  }
  for (const [key, row] of rows) if (!seen.has(row)) { row.tr.remove(); rows.delete(key); }
  // One scale for every sparkline, so their heights compare across replicas.
  let max = 1;
  for (const row of rows.values()) for (const p of row.points) max = Math.max(max, p.rate);
  for (const row of rows.values()) draw(row, now, max);
  $("empty").hidden = rows.size > 0;
}

function status(live, text) {
  $("status").dataset.state = live ? "live" : "down";
  set($("status"), text);
  document.body.classList.toggle("down", !live);
}

let latest;
$("route").addEventListener("change", () => { if (latest) render(...latest, performance.now()); });

async function poll() {
  try {
    const [metrics, replicas, health] = await Promise.all([get(METRICS_PATH), get("/_lb/replicas"), get("/_lb/health")]);
    latest = [metrics, replicas, health];
    render(metrics, replicas, health, performance.now());
    status(true, "live \\u00b7 " + new Date().toLocaleTimeString());
  } catch (error) {
    const why = error && error.name === "TimeoutError" ? "no answer within " + TIMEOUT_MS / 1000 + " s" : String(error && error.message || error);
    status(false, "balancer not answering \\u2014 " + why);
  }
  setTimeout(poll, POLL_MS);
}
poll();
`

const CARDS: ReadonlyArray<readonly [id: string, label: string]> = [
  ["algorithm", "algorithm"],
  ["total-requests", "total requests"],
  ["rps", "requests/s (10 s)"],
  ["healthy", "healthy replicas"],
  ["active-leases", "active leases"],
  ["fallbacks", "fallbacks"],
  ["panics", "panics"],
  ["cache-hit", "cache hit rate"],
  ["routing-time", "avg routing time"],
]

const COLUMNS: ReadonlyArray<readonly [label: string, numeric: boolean]> = [
  ["replica", false],
  ["node", false],
  ["health", false],
  ["leases", true],
  ["picks/s", true],
  ["picks/s, last minute", false],
  ["CPU", true],
  ["memory", true],
  ["network Mbps", true],
  ["metrics age", true],
  ["score", true],
  ["in flight (reported)", true],
  ["CPU (reported)", true],
  ["report age", true],
]

/**
 * A value as a script literal that cannot end the script element or the line: `<`, `>`, `&` and the
 * line separators become escapes, which JSON.stringify leaves as they are.
 */
const scriptLiteral = (value: string): string =>
  JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  )

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`

export interface DashboardPage {
  readonly body: Buffer
  readonly headers: Readonly<Record<string, string>>
}

/** The page, reading the metrics JSON at `metricsPath`; its policy allows its own script and nothing else. */
export const dashboardPage = (metricsPath: string): DashboardPage => {
  const script = SCRIPT.replace("__METRICS_PATH__", () => scriptLiteral(metricsPath))
  const cards = CARDS.map(([id, label]) => `<div class="card"><dt>${label}</dt><dd id="${id}">–</dd></div>`)
  const columns = COLUMNS.map(([label, numeric]) => `<th${numeric ? ' class="n"' : ""}>${label}</th>`)
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>SwarmGuard LB</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body><header><h1>SwarmGuard LB</h1><select id="route" hidden aria-label="route"></select><span id="status">connecting…</span></header>
<main><dl id="summary">${cards.join("")}</dl>
<table><thead><tr>${columns.join("")}</tr></thead><tbody id="replicas"></tbody>
<tbody id="empty"><tr><td colspan="${COLUMNS.length}" class="sub">no replica known</td></tr></tbody></table></main>
<script>${script}</script></body></html>
`
  return {
    body: Buffer.from(html, "utf8"),
    headers: {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": [
        "default-src 'none'",
        `script-src ${sha256(script)}`,
        `style-src ${sha256(STYLE)}`,
        "connect-src 'self'",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
      ].join("; "),
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    },
  }
}
