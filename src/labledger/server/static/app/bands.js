// Replicate sets (runs that differ only in their seed) drawn as mean ± std bands: one
// mean line per set with a shaded band of one standard deviation (sample std, n - 1)
// either side; a set of one run is its own line. A toggle draws the single runs instead.
import { el } from "./util.js";
import { seriesValues } from "./api.js";

// {xs, mean, lo, hi} over the union of the runs' x values; at each x only the runs that
// have a finite value there count (std needs two of them, else the band is the mean).
export function bandOf(parts) {
  const at = new Map();
  for (const { xs, ys } of parts) {
    for (let i = 0; i < xs.length; i++) {
      const y = ys[i];
      if (y === null || !Number.isFinite(y)) continue;
      const a = at.get(xs[i]);
      if (a) a.push(y); else at.set(xs[i], [y]);
    }
  }
  const xs = [...at.keys()].sort((a, b) => a - b);
  const mean = [], lo = [], hi = [];
  for (const x of xs) {
    const v = at.get(x);
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - m) * (b - m), 0) / (v.length - 1)) : 0;
    mean.push(m); lo.push(m - sd); hi.push(m + sd);
  }
  return { xs, mean, lo, hi };
}

function rgba(color, alpha) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color || "");
  if (!m) return `rgba(120,120,120,${alpha})`;
  return `rgba(${parseInt(m[1], 16)},${parseInt(m[2], 16)},${parseInt(m[3], 16)},${alpha})`;
}

// A LineChart spec for metric `key`: sets = [{set, runs: [id], color, label}], get(id) ->
// {xs, ys} or null. With `single`, every run of a set is its own line in the set's colour.
export function bandSpec(title, xLabel, sets, get, { single = false } = {}) {
  const series = [];
  const bands = [];
  for (const s of sets) {
    const parts = s.runs.map(get).filter(Boolean);
    if (!parts.length) continue;
    if (single || parts.length === 1) {
      parts.forEach((p, i) => series.push({ label: parts.length === 1 ? s.label : `${s.label} #${i + 1}`, color: s.color, xs: p.xs, ys: p.ys }));
      continue;
    }
    const b = bandOf(parts);
    const i = series.length;
    series.push({ label: `${s.label} (mean of ${parts.length})`, color: s.color, xs: b.xs, ys: b.mean });
    series.push({ label: "+std", color: s.color, xs: b.xs, ys: b.hi, bandEdge: true });
    series.push({ label: "-std", color: s.color, xs: b.xs, ys: b.lo, bandEdge: true });
    bands.push([i + 1, i + 2, rgba(s.color, 0.18)]);
  }
  return { title, xLabel, series, bands, meta: single ? "single runs" : "mean ± std over seeds" };
}

// A label for each set from the config keys that differ between the sets.
export function setLabels(sets) {
  const flat = (c) => c || {};
  const keys = [...new Set(sets.flatMap((s) => Object.keys(flat(s.config))))].sort()
    .filter((k) => new Set(sets.map((s) => JSON.stringify(flat(s.config)[k]))).size > 1).slice(0, 3);
  sets.forEach((s, i) => {
    const parts = keys.map((k) => `${k}=${JSON.stringify(flat(s.config)[k])}`);
    s.label = parts.length ? parts.join(" ") : `set ${i + 1}`;
  });
  return sets;
}

// The toggle shown above band charts: checked = single runs.
export function singleRunsToggle(checked, onChange) {
  const box = el("input", { type: "checkbox", class: "single-runs", checked, "aria-label": "show single runs" });
  box.addEventListener("change", () => onChange(box.checked));
  return el("label", { class: "inline band-toggle" }, box, " single runs");
}

export function seriesXY(s, xAxis) {
  return { xs: xAxis === "time" ? s.elapsed : s.steps, ys: seriesValues(s.values) };
}
