// Line charts on uPlot (vendored, static/vendor/uplot). Series arrive downsampled by
// the server (each bucket keeps its min and max), so a chart never holds more than a
// few thousand points however long the run.
import { el, clear, fmtValue } from "./util.js";
import { seriesValues } from "./api.js";

// Exponential moving average with TensorBoard's debiasing; non-finite points pass through.
export function smooth(ys, weight) {
  if (!weight || weight <= 0) return ys;
  const out = new Array(ys.length);
  let last = 0, n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || !Number.isFinite(y)) { out[i] = y; continue; }
    last = last * weight + (1 - weight) * y;
    n++;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
}

function finiteOrNull(arr) {
  const out = new Array(arr.length);
  for (let i = 0; i < arr.length; i++) out[i] = Number.isFinite(arr[i]) ? arr[i] : null;
  return out;
}

function sameXs(list) {
  const a = list[0].xs;
  return list.every((s) => s.xs.length === a.length && (s.xs === a || s.xs.every((x, i) => x === a[i])));
}

// Turns [{xs, ys}] into uPlot's aligned [xs, ys1, ys2, ...].
export function alignSeries(list) {
  if (!list.length) return [[]];
  if (sameXs(list)) return [Array.from(list[0].xs), ...list.map((s) => s.ys)];
  return window.uPlot.join(list.map((s) => [Array.from(s.xs), s.ys]));
}

// Axis ticks: 3-4 significant digits, thousands as k and millions as M (steps).
export function fmtTickValue(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "";
  const a = Math.abs(v);
  if (a >= 1e6 && Number.isInteger(v)) return `${Number((v / 1e6).toPrecision(4))}M`;
  if (a >= 1e4 && Number.isInteger(v)) return `${Number((v / 1e3).toPrecision(4))}k`;
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}
const ticks = (u, splits) => splits.map(fmtTickValue);

const AXIS = { stroke: "#5b6470", grid: { stroke: "#eef0f3", width: 1 }, ticks: { stroke: "#d5d9df", width: 1 }, font: "11px system-ui, sans-serif" };

// A chart of several series over a shared x axis. spec: {title, xLabel, series: [{label, color, xs, ys}]}
export class LineChart {
  constructor(host, spec, { height = 220, smoothing = 0 } = {}) {
    this.host = host;
    this.height = height;
    this.smoothing = smoothing;
    this.box = el("div", { class: "chart", dataset: { key: spec.title } });
    this.titleEl = el("div", { class: "chart-title", text: spec.title });
    this.metaEl = el("span", { class: "chart-meta muted" });
    this.titleEl.append(this.metaEl);
    this.plotEl = el("div", { class: "chart-plot" });
    this.box.append(this.titleEl, this.plotEl);
    host.append(this.box);
    this.plot = null;
    this.set(spec);
    this.resizer = new ResizeObserver(() => {
      // the first callback fires on observe(): redraw only when the width really changed
      const w = this.width();
      if (this.plot && w !== this.plot.width) this.plot.setSize({ width: w, height: this.height });
    });
    this.resizer.observe(this.plotEl);
  }

  width() {
    return Math.max(200, Math.floor(this.plotEl.clientWidth || this.host.clientWidth || 400));
  }

  set(spec) {
    this.spec = spec;
    const keep = spec.series.map((s) => s.xs.length > 0);
    const list = spec.series.filter((s, i) => keep[i]);
    // bands: [[hi, lo, fill]] as indices into spec.series -> uPlot's (1-based, after filtering)
    const at = []; let j = 0;
    keep.forEach((k, i) => { at[i] = k ? ++j : null; });
    const bands = (spec.bands || []).filter(([hi, lo]) => at[hi] && at[lo]).map(([hi, lo, fill]) => ({ series: [at[hi], at[lo]], fill }));
    if (!list.length) {
      if (this.plot) { this.plot.destroy(); this.plot = null; }
      clear(this.plotEl).append(el("p", { class: "muted empty-chart", text: "no points" }));
      this.box.dataset.series = "0";
      return;
    }
    const data = alignSeries(list.map((s) => ({ xs: s.xs, ys: finiteOrNull(smooth(s.ys, this.smoothing)) })));
    const labels = list.map((s) => s.label).join("|");
    const totals = list.reduce((a, s) => a + (s.total || s.xs.length), 0);
    this.metaEl.textContent = spec.meta || "";
    this.box.dataset.series = String(list.filter((x) => !x.bandEdge).length);
    this.box.dataset.bands = String(bands.length);
    this.box.dataset.points = String(totals);
    if (this.plot && this.labels === labels && this.xLabel === spec.xLabel && !bands.length) {
      this.plot.setData(data);
      return;
    }
    if (this.plot) this.plot.destroy();
    clear(this.plotEl);
    this.labels = labels;
    this.xLabel = spec.xLabel;
    const opts = {
      width: this.width(),
      height: this.height,
      scales: { x: { time: false } },
      legend: { show: list.length <= 12, live: true },
      bands,
      cursor: { drag: { x: true, y: false, setScale: true }, points: { size: 5 } },
      series: [
        { label: spec.xLabel || "step", value: (u, v) => (v === null || v === undefined ? "–" : fmtValue(v)) },
        ...list.map((s) => ({
          label: s.label,
          stroke: s.bandEdge ? "transparent" : s.color,
          width: s.bandEdge ? 0 : 1.5,
          spanGaps: true,
          points: { show: !s.bandEdge && s.xs.length <= 60, size: 5, fill: s.color },
          value: (u, v) => (v === null || v === undefined ? "–" : fmtValue(v)),
        })),
      ],
      axes: [{ ...AXIS, values: ticks, label: spec.xLabel, labelSize: 18, labelFont: "11px system-ui, sans-serif" }, { ...AXIS, values: ticks, size: 56 }],
    };
    this.plot = new window.uPlot(opts, data, this.plotEl);
  }

  setSmoothing(w) {
    this.smoothing = w;
    this.set(this.spec);
  }

  destroy() {
    this.resizer.disconnect();
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.box.remove();
  }
}

// One series response from /api/v1/series -> {xs, ys} for the chosen x axis.
export function toXY(s, xAxis) {
  const ys = seriesValues(s.values);
  const xs = xAxis === "time" ? s.elapsed : s.steps;
  return { xs, ys, total: s.total };
}

// Points to ask the server for: one per horizontal pixel of the plot, i.e. a min and a
// max for every two pixels (each bucket keeps both, so spikes survive).
export function pointsFor(widthPx) {
  return Math.max(200, Math.min(4000, Math.round(widthPx || 800)));
}

// The plot width of one chart in a grid (charts are at least 440 px wide, see app.css).
export function chartWidth(grid) {
  const w = grid.clientWidth || 1000;
  const cols = Math.max(1, Math.floor((w + 12) / (440 + 12)));
  return Math.floor((w - 12 * (cols - 1)) / cols) - 70;
}
