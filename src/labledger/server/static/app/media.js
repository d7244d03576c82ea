// Rich results (images, tables, confusion matrices, PR/ROC curves, histograms, texts):
// one panel per key. Loaded lazily: the keys first (one query); a panel fetches the
// steps of its key and the first page of values at one step only once it nears the
// viewport (IntersectionObserver), further pages as they are scrolled to, and images
// load as the browser shows them (loading=lazy), so a run with 10,000 images opens
// with a handful of small requests. Every user string reaches the page as text.
import { el, clear } from "./util.js";
import { api } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children) if (c) node.append(c);
  return node;
}

export function blobUrl(runId, item) {
  const fmt = item.kind === "image" ? `?format=${encodeURIComponent((item.meta || {}).format || "png")}` : "";
  return `/api/v1/runs/${encodeURIComponent(runId)}/media/blob/${encodeURIComponent(item.sha256)}${fmt}`;
}

async function blobJSON(runId, item) {
  const resp = await fetch(blobUrl(runId, item), { credentials: "same-origin" });
  if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
  return item.kind === "text" ? resp.text() : resp.json();
}

// The section of the run page; resolves to the number of keys shown. keys: the
// promise of api.mediaKeys(runId) when the caller asked for it already.
export async function renderMedia(host, runId, keys = null) {
  keys = await (keys || api.mediaKeys(runId));
  clear(host);
  if (!keys.length) {
    host.append(el("p", { class: "muted", text: "no rich results logged (labledger.Image, Table, ConfusionMatrix, Curve, Histogram, Text)" }));
    return 0;
  }
  const grid = el("div", { class: "media-grid" });
  host.append(grid);
  for (const k of keys) grid.append(mediaPanel(runId, k));
  return keys.length;
}

// Items fetched per request: the first page of a step, then the next as the reader
// scrolls to the "more" button (or clicks it).
export const PAGE = 24;

// Run fn once node comes near the viewport (IntersectionObserver); at once without one.
function whenVisible(node, fn, margin = "300px") {
  if (typeof IntersectionObserver !== "function") { fn(); return; }
  const io = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) { io.disconnect(); fn(); }
  }, { rootMargin: margin });
  io.observe(node);
}

// One key of one run: a panel with a step slider when the key was logged at several steps.
// Nothing is fetched until the panel nears the viewport; then its steps and the first
// page of items at one step; further pages as the reader scrolls to them.
// step: show the first logged step at or after it (else the last one), without a slider.
export function mediaPanel(runId, info, { step = null, title = null } = {}) {
  const body = el("div", { class: "media-body" });
  const stepLabel = el("span", { class: "muted small media-step" });
  const head = el("div", { class: "media-head" },
    el("h3", { class: "mono media-key", text: title || info.key }),
    el("span", { class: "muted small", text: `${info.kind.replace("_", " ")} · ${info.count}` }), " ", stepLabel);
  const panel = el("div", { class: `media-panel kind-${info.kind}`, dataset: { key: info.key, kind: info.kind } }, head, body);
  let token = 0;  // the latest show(): an older one's late answer is dropped
  async function load() {
    // the last step's values are asked for beside the list of steps, not after it
    const first = step === null ? page(info.last_step, 0, ++token) : null;
    const steps = info.steps > 1 ? await api.mediaSteps(runId, info.key) : [info.last_step];
    let idx = steps.length - 1;
    if (step !== null) {
      const at = steps.findIndex((s) => s >= step);
      if (at >= 0) idx = at;
    }
    async function page(at, offset, mine) {
      const items = await api.media(runId, { key: info.key, step: at, offset, limit: PAGE });
      const nodes = await Promise.all(items.map((it) => renderItem(runId, it)));
      if (mine !== token) return null;
      if (items.length === PAGE) nodes.push(moreButton(at, offset + PAGE, mine));
      return nodes;
    }
    function moreButton(at, offset, mine) {
      const btn = el("button", { class: "media-more", text: "more" });
      const next = () => {
        if (btn.disabled) return;
        btn.disabled = true;
        page(at, offset, mine).then((nodes) => {
          if (nodes && nodes.length) btn.replaceWith(...nodes);
          else btn.remove();
        }).catch((e) => btn.replaceWith(el("p", { class: "error-box", text: e.message })));
      };
      btn.addEventListener("click", next);
      whenVisible(btn, next, "200px");
      return btn;
    }
    async function show(pending = null) {
      const mine = pending ? token : ++token;
      const at = steps[idx];
      const nodes = await (pending || page(at, 0, mine));
      if (nodes === null) return;  // the slider moved on meanwhile
      clear(body).append(...nodes);
      panel.dataset.step = String(at);
      stepLabel.textContent = `step ${at}`;  // set once the values shown are this step's
    }
    if (steps.length > 1 && step === null) {
      const slider = el("input", { type: "range", class: "media-slider", min: 0, max: steps.length - 1, value: idx, "aria-label": `step of ${info.key}` });
      slider.addEventListener("input", () => { idx = Number(slider.value); show().catch(fail); });
      head.append(slider);
    }
    await show(first && steps[idx] === info.last_step ? first : null);
  }
  function fail(e) { body.append(el("p", { class: "error-box", text: e.message })); }
  whenVisible(panel, () => { load().catch(fail); });
  return panel;
}

async function renderItem(runId, item) {
  const cap = item.caption ? el("figcaption", { class: "media-caption", text: item.caption }) : null;
  if (item.kind === "image") {
    const meta = item.meta || {};
    const img = el("img", { class: "media-image", loading: "lazy", decoding: "async", alt: item.caption || item.key, src: blobUrl(runId, item) });
    if (meta.width && meta.height) { img.width = meta.width; img.height = meta.height; }
    return el("figure", { class: "media-figure" }, img, cap);
  }
  const data = await blobJSON(runId, item);
  let node;
  if (item.kind === "table") node = tableView(data);
  else if (item.kind === "confusion_matrix") node = matrixView(data);
  else if (item.kind === "curve") node = curveView(data, item.meta || {});
  else if (item.kind === "histogram") node = histogramView(data);
  else node = el("pre", { class: "media-text", text: data });
  return el("figure", { class: "media-figure" }, node, cap);
}

// A table: click a header to sort (again: reverse), type to filter rows.
function tableView(data) {
  const cols = data.columns || [];
  let rows = data.rows || [];
  let sortBy = -1, asc = true;
  const tbody = el("tbody");
  const filter = el("input", { class: "media-filter", placeholder: "filter rows", "aria-label": "filter rows" });
  function draw() {
    const q = filter.value.trim().toLowerCase();
    let shown = q ? rows.filter((r) => r.some((v) => String(v ?? "").toLowerCase().includes(q))) : rows.slice();
    if (sortBy >= 0) {
      shown.sort((a, b) => {
        const x = a[sortBy], y = b[sortBy];
        const c = typeof x === "number" && typeof y === "number" ? x - y : String(x ?? "").localeCompare(String(y ?? ""));
        return asc ? c : -c;
      });
    }
    clear(tbody).append(...shown.slice(0, 1000).map((r) => el("tr", null, r.map((v) => el("td", { class: typeof v === "number" ? "num" : "", text: v === null ? "—" : String(v) })))));
  }
  const head = el("tr", null, cols.map((c, i) => el("th", { class: "sortable", text: c, onclick: () => { asc = sortBy === i ? !asc : true; sortBy = i; draw(); } })));
  filter.addEventListener("input", draw);
  draw();
  return el("div", { class: "media-table" }, filter, el("table", { class: "grid compact" }, el("thead", null, head), tbody));
}

// A confusion matrix as a heat map: counts, or each row normalised to its true-label total.
function matrixView(data) {
  const labels = data.labels || [];
  const m = data.matrix || [];
  let normalised = false;
  const grid = el("table", { class: "cm-grid" });
  // one label, its state in aria-pressed (a label that flips to "counts" read as the state shown)
  const toggle = el("button", { class: "cm-toggle", type: "button", text: "normalised", "aria-pressed": "false", title: "rows normalised to their true-label total", onclick: () => { normalised = !normalised; toggle.setAttribute("aria-pressed", String(normalised)); draw(); } });
  function draw() {
    const max = Math.max(1, ...m.flat());
    clear(grid).append(
      el("tr", null, el("th", { class: "muted small", text: "true \\ pred" }), labels.map((l) => el("th", { class: "mono", text: l }))),
      ...m.map((row, i) => {
        const total = row.reduce((a, b) => a + b, 0) || 1;
        return el("tr", null, el("th", { class: "mono", text: labels[i] }), row.map((v) => {
          const share = normalised ? v / total : v / max;
          const td = el("td", { class: "cm-cell num", text: normalised ? (v / total).toFixed(2) : String(v) });
          td.style.background = `rgba(37, 99, 235, ${(0.08 + 0.85 * share).toFixed(3)})`;
          if (share > 0.55) td.style.color = "#fff";
          return td;
        }));
      }));
  }
  draw();
  return el("div", { class: "media-cm" }, toggle, grid);
}

function axes(w, h, pad) {
  return [svg("line", { x1: pad, y1: h - pad, x2: w - pad, y2: h - pad, class: "axis" }), svg("line", { x1: pad, y1: pad, x2: pad, y2: h - pad, class: "axis" })];
}

// A PR or ROC curve in the unit square, with its AUC.
function curveView(data, meta) {
  const w = 260, h = 220, pad = 24;
  const xs = data.x || [], ys = data.y || [];
  const pts = xs.map((x, i) => `${(pad + x * (w - 2 * pad)).toFixed(1)},${(h - pad - ys[i] * (h - 2 * pad)).toFixed(1)}`).join(" ");
  const label = data.which === "roc" ? "ROC" : "PR";
  const auc = meta.auc === undefined || meta.auc === null ? "" : ` · ${data.which === "roc" ? "AUC" : "AP"} ${Number(meta.auc).toFixed(3)}`;
  const chart = svg("svg", { class: "media-curve", width: w, height: h, viewBox: `0 0 ${w} ${h}` },
    ...axes(w, h, pad), svg("polyline", { points: pts, class: "curve-line", fill: "none" }));
  return el("div", null, el("div", { class: "small curve-label", text: `${label}${auc}` }), chart);
}

// A histogram's bars (the slider of its panel moves through steps).
function histogramView(data) {
  const w = 260, h = 160, pad = 18;
  const counts = data.counts || [], edges = data.edges || [];
  const max = Math.max(1, ...counts);
  const bw = (w - 2 * pad) / Math.max(1, counts.length);
  const bars = counts.map((c, i) => svg("rect", { class: "hist-bar", x: (pad + i * bw).toFixed(1), width: Math.max(1, bw - 1).toFixed(1), y: (h - pad - (c / max) * (h - 2 * pad)).toFixed(1), height: ((c / max) * (h - 2 * pad)).toFixed(1) }));
  const range = edges.length ? `${Number(edges[0]).toPrecision(3)} … ${Number(edges[edges.length - 1]).toPrecision(3)}` : "empty";
  return el("div", null, svg("svg", { class: "media-hist", width: w, height: h, viewBox: `0 0 ${w} ${h}` }, ...axes(w, h, pad), ...bars), el("div", { class: "muted small", text: range }));
}
