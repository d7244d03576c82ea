// DOM and formatting helpers. Every piece of user data reaches the page through
// textContent or a DOM property here; nothing builds HTML from strings.

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = String(v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
      else if (k === "href") node.setAttribute("href", safeHref(v));
      else if (k in node && typeof v !== "string") node[k] = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// Only same-site links: hash routes and absolute paths (no javascript: or other schemes).
export function safeHref(v) {
  const s = String(v);
  return s.startsWith("#") || (s.startsWith("/") && !s.startsWith("//")) ? s : "#";
}

// node.append() that skips null/undefined/false (DOM append would print "null").
export function add(node, ...children) {
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) node.append(c);
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function decodeFloats(v) {
  if (Array.isArray(v)) return v.map(decodeFloats);
  if (v && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$float") return Number(v.$float);
    const out = {};
    for (const k of keys) out[k] = decodeFloats(v[k]);
    return out;
  }
  return v;
}

export function flatten(obj, prefix = "", out = {}) {
  if (!obj || typeof obj !== "object" || Array.isArray(obj)) return out;
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) flatten(v, key, out);
    else out[key] = v;
  }
  return out;
}

// The value at a column key such as "config.lr", "summary.acc", "name".
export function runValue(run, key) {
  if (key.startsWith("config.")) return (run._flatConfig ||= flatten(run.config || {}))[key.slice(7)];
  if (key.startsWith("summary.")) return (run.summary || {})[key.slice(8)];
  if (key.startsWith("metric.")) {
    const m = (run.metrics || {})[key.slice(7)];
    return m ? m.last : undefined;
  }
  return run[key];
}

export function fmtValue(v) {
  if (v === undefined) return "";
  if (v === null) return "null";
  if (typeof v === "number") {
    if (Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
    if (Number.isInteger(v)) return Math.abs(v) >= 1e15 ? v.toExponential(4) : String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(4);
    return String(Number(v.toPrecision(6)));
  }
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

const pad = (n) => String(n).padStart(2, "0");

export function fmtTime(epoch) {
  if (epoch === null || epoch === undefined) return "";
  const d = new Date(epoch * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtAgo(epoch) {
  if (!epoch) return "";
  const s = Date.now() / 1000 - epoch;
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h ? `${h}h ${pad(m)}m` : `${m}m ${pad(sec)}s`;
}

// Sizes in decimal units (1 KB = 1000 bytes), as everywhere in labledger.
export function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0, v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

export function fmtCount(n) {
  return Number(n).toLocaleString("en-US");
}

export function statusBadge(status) {
  return el("span", { class: `badge status-${/^[a-z]+$/.test(status) ? status : "unknown"}`, text: status });
}

// A summary value amended after its run ended (labledger edit): the sealed value stays
// what is shown and ranked; this marker carries the amendment beside it. null when the
// value is as logged.
export function amendedMarker(run, key) {
  const a = ((run && run.amended) || {})[key];
  if (!a) return null;
  const value = a.value === null || a.value === undefined ? "removed" : fmtValue(a.value);
  const title = `amended after the run ended: ${fmtValue(a.sealed)} (sealed, as logged) → ${value}, by ${a.by || "?"} at ${fmtTime(a.at)}` +
    (a.reason ? ` (${a.reason})` : "") + ". Rankings and citations use the sealed value.";
  return el("span", { class: "badge amended", title, dataset: { key, amended: value } }, `amended → ${value}`);
}

// Reproduction verdicts (labledger repro), as `labledger show` / `ls` word them.
export const VERDICTS = {
  "reproduced": "✓ reproduced",
  "reproduced-within-tolerance": "≈ within tolerance",
  "not-reproduced": "✗ not reproduced",
  "not-reproducible": "! not reproducible",
};

export function verdictBadge(v) {
  return el("span", { class: `badge verdict-${String(v).replace(/[^a-z-]/gi, "")}`, text: VERDICTS[v] || String(v) });
}

// 20 distinguishable colours (Tableau 10 + a darker set), cycled by run index.
export const PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#bab0ac", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
  "#17becf", "#bcbd22", "#7f7f7f", "#393b79",
];
export const colorFor = (i) => PALETTE[i % PALETTE.length];

export function isNum(v) {
  return typeof v === "number" && Number.isFinite(v);
}

// A continuous colour scale (plasma-like, dark blue to orange) for t in [0, 1].
// plasma, stopped before its pale yellow end so every line stays visible on white
const VIRIDIS = [[13, 8, 135], [106, 0, 168], [177, 42, 144], [225, 100, 98], [245, 150, 55]];
export function viridis(t) {
  if (!Number.isFinite(t)) return "rgba(150,150,150,0.6)";
  t = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(t)), f = t - i;
  const c = VIRIDIS[i].map((a, j) => Math.round(a + (VIRIDIS[i + 1][j] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export function section(title, ...children) {
  return el("section", { class: "card" }, el("h2", { text: title }), ...children);
}

// Key/value rows; a value that was not recorded (null) shows as an absent "—", not "null".
export function kvTable(obj, { empty = "none" } = {}) {
  const flat = flatten(obj || {});
  const keys = Object.keys(flat).filter((k) => flat[k] !== undefined).sort();
  if (!keys.length || keys.every((k) => flat[k] === null)) return el("p", { class: "muted", text: empty });
  return el("table", { class: "kv" }, el("tbody", null,
    keys.map((k) => el("tr", null, el("th", { text: k }), flat[k] === null
      ? el("td", { class: "absent", title: "not recorded", text: "—" })
      : el("td", { class: "mono", text: fmtValue(flat[k]) })))));
}

export function debounce(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

// The machine's system/* metrics in their unit (as `labledger show` prints them):
// bytes in MB, rates in MB/s, percentages with %, instead of 8.0782e+7.
export function metricUnit(key) {
  if (!String(key).startsWith("system/")) return "";
  if (key.endsWith("_bytes_per_s")) return "MB/s";
  if (key.endsWith("_bytes")) return "MB";
  if (key.endsWith("percent") || key.endsWith("/util")) return "%";
  if (key.endsWith("temp_c")) return "°C";
  if (key.endsWith("power_w")) return "W";
  return "";
}

export function fmtMetric(key, v) {
  const unit = metricUnit(key);
  if (!unit || typeof v !== "number" || !Number.isFinite(v)) return fmtValue(v);
  return `${(unit === "MB" || unit === "MB/s" ? v / 1e6 : v).toFixed(1)} ${unit}`;
}

// "Ada Lovelace <ada@x.org>" -> "Ada Lovelace"; "ada@x.org" -> "ada" (the full one in a title).
export function shortAuthor(author) {
  const a = String(author || "").trim();
  if (!a) return "";
  const lt = a.indexOf("<");
  if (lt > 0 && a.slice(0, lt).trim()) return a.slice(0, lt).trim();
  const bare = a.replace(/^<|>$/g, "");
  return bare.includes("@") ? bare.slice(0, bare.indexOf("@")) : bare;
}

// The metric a project's tables lead with: the one last sorted by (remembered per project
// in localStorage), else the most-logged validation metric, then test, then any user metric.
const VALIDATION_RE = /(^|[/_.-])(val|valid|validation|eval|dev)([/_.-]|$)/i;
const TEST_RE = /(^|[/_.-])test([/_.-]|$)/i;
const primaryKey = (project) => `labledger.primary.${project || "*"}`;

export function rememberedPrimary(project) {
  try { return localStorage.getItem(primaryKey(project)) || null; } catch (e) { return null; }
}

export function rememberPrimary(project, metric) {
  try { if (metric && !metric.startsWith("system/")) localStorage.setItem(primaryKey(project), metric); } catch (e) { /* private mode */ }
}

export function choosePrimary(summaryKeys, runs, remembered) {
  const user = (summaryKeys || []).filter((k) => !k.startsWith("system/"));
  if (remembered && user.includes(remembered)) return remembered;
  if (!user.length) return null;
  const count = new Map(user.map((k) => [k, (runs || []).filter((r) => r.summary && k in r.summary).length]));
  const kind = (k) => (VALIDATION_RE.test(k) ? 0 : TEST_RE.test(k) ? 1 : 2);
  return [...user].sort((a, b) => kind(a) - kind(b) || count.get(b) - count.get(a) || a.localeCompare(b))[0];
}
