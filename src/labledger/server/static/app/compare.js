// Compare page: provenance side by side (commit, dirty, patch, seed, data digests,
// package differences, author, reproduction verdict), overlaid metric charts (x = step or
// time, smoothing), summary and config diff tables (system/* folded apart, in units),
// parallel coordinates and a scatter plot over the compared runs. Differing rows are
// highlighted.
import { el, clear, colorFor, flatten, fmtMetric, fmtValue, section, shortAuthor, statusBadge, VERDICTS, viridis, amendedMarker } from "./util.js";
import { api } from "./api.js";
import { LineChart, chartWidth, pointsFor, toXY } from "./charts.js";
import { bandSpec, setLabels, singleRunsToggle } from "./bands.js";
import { drawParcoords, drawScatter } from "./plots.js";

const DEFAULT_CHARTS = 8;

export async function renderCompare(main, q, ctx) {
  const ids = (q.get("ids") || "").split(",").map((s) => s.trim()).filter(Boolean);
  ctx.crumbs([{ label: "Projects", href: "#/" }, { label: "Compare" }]);
  main.className = "compare-page";
  if (!ids.length) {
    main.append(el("div", { class: "card empty" }, el("h2", { text: "Nothing to compare" }),
      el("p", { text: "Select two or more runs in a runs table and press Compare." })));
    return;
  }
  let runs = await api.compare(ids);
  if (!ctx.alive()) return;
  runs.forEach((r, i) => { r._color = colorFor(i); r._label = r.name || r.id.slice(0, 8); r._flat = flatten(r.config || {}); });
  const projects = [...new Set(runs.map((r) => r.project))];
  if (projects.length === 1) ctx.crumbs([{ label: "Projects", href: "#/" }, { label: projects[0], href: `#/p/${encodeURIComponent(projects[0])}` }, { label: `Compare ${runs.length} runs` }]);

  const allMetrics = [...new Set(runs.flatMap((r) => Object.keys(r.metrics || {})))].sort();
  const userMetrics = allMetrics.filter((k) => !k.startsWith("system/"));
  const state = {
    x: q.get("x") === "time" ? "time" : "step",
    smooth: Math.min(0.99, Math.max(0, parseFloat(q.get("smooth") || "0") || 0)),
    keys: q.has("keys") ? q.get("keys").split(",").filter((k) => allMetrics.includes(k)) : userMetrics.slice(0, DEFAULT_CHARTS),
  };
  state.single = q.get("single") === "1";
  // replicate sets among the compared runs: with one of two or more runs, the charts draw
  // each set as mean ± std (a toggle draws the single runs)
  const sets = setLabels((await api.replicates({ run: runs.map((r) => r.id) })).sets || []);
  if (!ctx.alive()) return;
  sets.forEach((s, i) => { s.color = colorFor(i); });
  const banded = sets.some((s) => s.n > 1);
  if (banded) { // a set's runs share its colour
    const byRun = new Map(sets.flatMap((s) => s.runs.map((id) => [id, s.color])));
    runs.forEach((r) => { r._color = byRun.get(r.id) || r._color; });
  }
  const sync = () => ctx.setQuery({ ids, keys: state.keys, x: state.x === "step" ? "" : state.x, smooth: state.smooth || "", single: state.single ? "1" : "" });

  // ---- header: the runs, each with its colour
  const legend = el("div", { class: "run-legend" }, runs.map((r) => {
    const rest = ids.filter((id) => id !== r.id && !r.id.startsWith(id));
    return el("span", { class: "legend-item" },
      el("span", { class: "swatch", dataset: { color: r._color } }),
      el("a", { href: `#/run/${encodeURIComponent(r.id)}`, text: r._label }), statusBadge(r.status),
      rest.length >= 1 ? el("a", { class: "remove", title: "remove from comparison", href: `#/compare?ids=${rest.map(encodeURIComponent).join(",")}`, text: "×" }) : null);
  }));
  legend.querySelectorAll(".swatch").forEach((s) => { s.style.background = s.dataset.color; });
  main.append(el("div", { class: "page-head" }, el("h1", { text: `Comparing ${runs.length} runs` })), el("div", { class: "card" }, legend));

  // ---- charts with controls
  const xSel = el("select", { "aria-label": "x axis" }, el("option", { value: "step", text: "x: step", selected: state.x === "step" }), el("option", { value: "time", text: "x: time (s)", selected: state.x === "time" }));
  const smoothIn = el("input", { type: "range", min: "0", max: "0.99", step: "0.01", value: String(state.smooth), "aria-label": "smoothing" });
  const smoothOut = el("span", { class: "mono small", text: state.smooth.toFixed(2) });
  const metricPicker = el("details", { class: "picker" }, el("summary", { text: "Metrics" }),
    el("div", { class: "picker-list" }, allMetrics.map((k) => {
      const box = el("input", { type: "checkbox", checked: state.keys.includes(k), dataset: { key: k } });
      box.addEventListener("change", () => {
        state.keys = allMetrics.filter((m) => (m === k ? box.checked : state.keys.includes(m)));
        sync();
        loadCharts();
      });
      return el("label", null, box, el("span", { class: "mono", text: k }));
    })));
  const chartGrid = el("div", { class: "chart-grid" });
  const chartsSec = section("Metrics",
    el("div", { class: "toolbar" }, metricPicker, xSel, el("label", { class: "inline" }, "smoothing ", smoothIn, smoothOut),
      banded ? singleRunsToggle(state.single, (v) => { state.single = v; sync(); drawCharts(); }) : null), chartGrid);
  main.append(chartsSec);

  const charts = new Map();
  ctx.onLeave(() => charts.forEach((c) => c.destroy()));
  let cache = null; // run id -> key -> series response
  let cacheKey = "";

  async function fetchSeries() {
    const pts = pointsFor(chartWidth(chartGrid));
    const key = `${state.keys.join("|")}@${pts}`;
    if (cache && cacheKey === key) return cache;
    const per = await Promise.all(runs.map((r) => {
      const ks = state.keys.filter((k) => (r.metrics || {})[k]);
      return ks.length ? api.series([r.id], ks.slice(0, 64), pts) : Promise.resolve({ series: [] });
    }));
    cache = new Map();
    per.forEach((res, i) => cache.set(runs[i].id, new Map(res.series.map((s) => [s.key, s]))));
    cacheKey = key;
    return cache;
  }

  function drawCharts() {
    for (const [k, c] of charts) if (!state.keys.includes(k)) { c.destroy(); charts.delete(k); }
    for (const k of state.keys) {
      const series = [];
      runs.forEach((r) => {
        const s = cache.get(r.id)?.get(k);
        if (s) series.push({ label: r._label, color: r._color, ...toXY(s, state.x) });
      });
      const xLabel = state.x === "time" ? "time (s)" : "step";
      const spec = banded
        ? bandSpec(k, xLabel, sets, (id) => { const s = cache.get(id)?.get(k); return s ? toXY(s, state.x) : null; }, { single: state.single })
        : { title: k, xLabel, series };
      const c = charts.get(k);
      if (c) { c.smoothing = state.smooth; c.set(spec); } else charts.set(k, new LineChart(chartGrid, spec, { height: 240, smoothing: state.smooth }));
    }
    // keep the grid in the chosen order
    for (const k of state.keys) { const c = charts.get(k); if (c) chartGrid.append(c.box); }
    chartGrid.dataset.charts = String(charts.size);
  }

  async function loadCharts() {
    if (!state.keys.length) {
      charts.forEach((c) => c.destroy()); charts.clear();
      clear(chartGrid).append(el("p", { class: "muted", text: "choose metrics to plot" }));
      return;
    }
    chartGrid.querySelectorAll(":scope > p.muted").forEach((p) => p.remove());
    await fetchSeries();
    if (ctx.alive()) drawCharts();
  }
  xSel.addEventListener("change", () => { state.x = xSel.value; sync(); charts.forEach((c) => c.destroy()); charts.clear(); drawCharts(); });
  smoothIn.addEventListener("input", () => {
    state.smooth = parseFloat(smoothIn.value);
    smoothOut.textContent = state.smooth.toFixed(2);
    sync();
    charts.forEach((c) => c.setSmoothing(state.smooth));
  });

  // ---- config / summary diff tables
  const configKeys = [...new Set(runs.flatMap((r) => Object.keys(r._flat)))].sort();
  // the user's metrics first, the machine's system/* after them
  const summaryKeys = [...new Set(runs.flatMap((r) => Object.keys(r.summary || {})))]
    .sort((a, b) => (a.startsWith("system/") - b.startsWith("system/")) || a.localeCompare(b));
  const differs = (vals) => new Set(vals.map((v) => (v === undefined ? "\u0000" : JSON.stringify(v)))).size > 1;
  const diffKeys = configKeys.filter((k) => differs(runs.map((r) => r._flat[k])));
  const onlyDiff = el("input", { type: "checkbox", checked: true });
  const diffHost = el("div", { class: "scroll-x" });
  function diffTable(keys, get, title, { fmt = (k, v) => fmtValue(v), highlight = true } = {}) {
    return el("table", { class: "grid compact diff-table", dataset: { title } },
      el("thead", null, el("tr", null, el("th", { text: "key" }), runs.map((r) => {
        const th = el("th", null, el("span", { class: "swatch", dataset: { color: r._color } }), el("span", { text: r._label }));
        th.querySelector(".swatch").style.background = r._color;
        return th;
      }))),
      el("tbody", null, keys.map((k) => {
        const vals = runs.map((r) => get(r, k));
        return el("tr", { class: highlight && differs(vals) ? "differs" : "", dataset: { key: k } }, el("th", { class: "mono", text: k }),
          vals.map((v, i) => {
            const td = el("td", { class: "mono", text: v === undefined || v === null ? "—" : fmt(k, v) });
            // the sealed value, with an amendment made after the run ended beside it
            const mark = title === "summary" ? amendedMarker(runs[i], k) : null;
            if (mark) td.append(" ", mark);
            return td;
          }));
      })));
  }
  // provenance: what produced each run, where runs meet (the product's core claim)
  const git = (r) => (r.env || {}).git || {};
  const pkgs = (r) => (r.env || {}).packages || {};
  const dataNames = [...new Set(runs.flatMap((r) => (r.datasets || []).map((d) => d.name || d.path)))];
  const pkgNames = [...new Set(runs.flatMap((r) => Object.keys(pkgs(r))))].sort();
  const pkgDiff = pkgNames.filter((n) => differs(runs.map((r) => pkgs(r)[n])));
  const provRows = [
    ["commit", (r) => (git(r).commit ? String(git(r).commit).slice(0, 10) : (r.env && r.env.git ? "no commit" : undefined))],
    ["dirty", (r) => (git(r).dirty === undefined ? undefined : git(r).dirty ? "yes (uncommitted changes)" : "no")],
    ["patch", (r) => (git(r).diff_sha256 ? `sha256 ${String(git(r).diff_sha256).slice(0, 12)}` : git(r).dirty ? "not captured" : "none")],
    ["seed", (r) => r.seed],
    ...dataNames.map((n) => [`data ${n}`, (r) => { const d = (r.datasets || []).find((x) => (x.name || x.path) === n); return d && d.sha256 ? `sha256 ${String(d.sha256).slice(0, 12)}` : undefined; }]),
    ["packages", (r) => (Object.keys(pkgs(r)).length ? `${Object.keys(pkgs(r)).length} packages` : undefined)],
    ...pkgDiff.map((n) => [`package ${n}`, (r) => pkgs(r)[n] || "(absent)"]),
    ["author", (r) => r.author || undefined],
    ["reproduction", (r) => (r.repro && r.repro.verdict ? (VERDICTS[r.repro.verdict] || r.repro.verdict) : "not reproduced yet")],
  ];
  const provGet = new Map(provRows);
  const provTable = diffTable(provRows.map(([k]) => k), (r, k) => provGet.get(k)(r), "provenance", {
    fmt: (k, v) => (k === "author" ? shortAuthor(v) : fmtValue(v)),
  });
  provTable.querySelectorAll("tbody tr").forEach((tr) => {
    const k = tr.dataset.key;
    tr.dataset.row = k.split(" ")[0];
    if (k === "author") tr.querySelectorAll("td").forEach((td, i) => { td.title = runs[i].author || ""; });
  });
  const provSec = section("Provenance", el("div", { class: "scroll-x" }, provTable),
    el("p", { class: "muted small", text: pkgDiff.length ? `${pkgDiff.length} of ${pkgNames.length} packages differ (listed above)` : pkgNames.length ? `all ${pkgNames.length} packages are the same` : "no packages captured" }));
  provSec.id = "provenance";
  function renderDiff() {
    const keys = onlyDiff.checked ? diffKeys : configKeys;
    clear(diffHost).append(keys.length ? diffTable(keys, (r, k) => r._flat[k], "config")
      : el("p", { class: "muted", text: configKeys.length ? "All config values are equal." : "No config." }));
  }
  onlyDiff.addEventListener("change", renderDiff);
  const cfgSec = section("Config", el("label", { class: "inline" }, onlyDiff, " only keys that differ ", el("span", { class: "muted", text: `(${diffKeys.length} of ${configKeys.length})` })), diffHost);
  cfgSec.id = "config-diff";
  // the user's metrics, differing ones highlighted; the machine's system/* folded apart,
  // in units and never highlighted (they always differ)
  const userKeys = summaryKeys.filter((k) => !k.startsWith("system/"));
  const systemKeys = summaryKeys.filter((k) => k.startsWith("system/"));
  const sumGet = (r, k) => (r.summary || {})[k];
  const sumSec = section("Summary", el("div", { class: "scroll-x" }, userKeys.length ? diffTable(userKeys, sumGet, "summary", { fmt: fmtMetric }) : el("p", { class: "muted", text: "No summary values." })));
  // results first, each table the full width so that every run's column shows
  sumSec.id = "summary-diff";
  const sysSec = el("details", { class: "card system-group", id: "system-diff" },
    el("summary", null, el("h2", { class: "inline-h", text: "System metrics" }), " ", el("span", { class: "muted small", text: systemKeys.length ? `${systemKeys.length} keys (CPU, memory, disk, network), collapsed` : "none" })),
    el("div", { class: "scroll-x" }, systemKeys.length ? diffTable(systemKeys, sumGet, "system", { fmt: fmtMetric, highlight: false }) : el("p", { class: "muted", text: "No system metrics." })));
  chartsSec.before(provSec); // what produced the runs, before how they did
  main.append(sumSec, cfgSec, sysSec);
  renderDiff();

  // ---- parallel coordinates and scatter
  renderRelations(main, runs, { configKeys, summaryKeys, diffKeys, ctx });

  await loadCharts();
  if (!ctx.alive()) return;
  main.dataset.loaded = "1";
  const running = () => runs.some((r) => r.status === "running");
  ctx.live(running());
  if (running()) {
    ctx.poll(async () => {
      const fresh = await api.compare(runs.map((r) => r.id));
      runs = fresh.map((f, i) => Object.assign(f, { _color: runs[i]._color, _label: runs[i]._label, _flat: runs[i]._flat }));
      cache = null;
      await loadCharts();
      ctx.live(running());
      return running();
    }, 3000);
  }
}

// Parallel coordinates (config keys + one metric) and a scatter (any key vs a metric).
export function renderRelations(main, runs, { configKeys, summaryKeys, diffKeys, ctx, colorByMetric = false }) {
  const valueOf = (r, key) => (key.startsWith("config.") ? (r._flat || flatten(r.config || {}))[key.slice(7)] : (r.summary || {})[key.slice(8)]);
  const metricOpts = summaryKeys.filter((k) => !k.startsWith("system/"));
  const metricSel = el("select", { "aria-label": "metric" }, metricOpts.map((k) => el("option", { value: k, text: k })));
  const axesBox = el("details", { class: "picker" }, el("summary", { text: "Axes" }));
  const axesList = el("div", { class: "picker-list" });
  axesBox.append(axesList);
  // axes: keys most runs have. A sweep's parent run carries keys of its own (direction,
  // metric, sampler) that its trials lack: as axes they would break every trial's line.
  const present = (k) => runs.filter((r) => valueOf(r, `config.${k}`) !== undefined).length;
  const common = (k) => present(k) * 2 > runs.length;
  const axisKeys = (diffKeys.length ? diffKeys : configKeys).filter(common);
  const chosen = new Set(axisKeys.slice(0, 8));
  configKeys.forEach((k) => {
    const box = el("input", { type: "checkbox", checked: chosen.has(k) });
    box.addEventListener("change", () => { if (box.checked) chosen.add(k); else chosen.delete(k); drawPC(); });
    axesList.append(el("label", null, box, el("span", { class: "mono", text: k })));
  });
  const pcCanvas = el("canvas", { class: "parcoords", role: "img", "aria-label": "parallel coordinates" });
  const pcHost = el("div", { class: "canvas-host" }, pcCanvas);
  const pcNote = el("span", { class: "muted small" });
  const pcSec = section("Parallel coordinates", el("div", { class: "toolbar" }, axesBox, el("label", { class: "inline" }, "metric ", metricSel), pcNote), pcHost);
  pcSec.id = "parcoords";

  const allKeys = [...configKeys.map((k) => `config.${k}`), ...summaryKeys.map((k) => `summary.${k}`)];
  const xSel = el("select", { "aria-label": "scatter x" }, allKeys.map((k) => el("option", { value: k, text: k })));
  const ySel = el("select", { "aria-label": "scatter y" }, metricOpts.map((k) => el("option", { value: k, text: k })));
  // the scatter's x: a numeric key that varies (a category or a constant says little)
  const numericX = axisKeys.find((k) => runs.some((r) => typeof valueOf(r, `config.${k}`) === "number"));
  if (numericX || axisKeys.length) xSel.value = `config.${numericX || axisKeys[0]}`;
  const tip = el("div", { class: "tooltip", hidden: true });
  const scCanvas = el("canvas", { class: "scatter", role: "img", "aria-label": "scatter plot" });
  const scHost = el("div", { class: "canvas-host" }, scCanvas, tip);
  const scSec = section("Scatter", el("div", { class: "toolbar" }, el("label", { class: "inline" }, "x ", xSel), el("label", { class: "inline" }, "y ", ySel)), scHost);
  scSec.id = "scatter";
  main.append(pcSec, scSec);

  function drawPC() {
    const metric = metricSel.value;
    const axes = [...configKeys.filter((k) => chosen.has(k)), ...(metric ? [`summary:${metric}`] : [])];
    // a run without the metric (a sweep's parent) draws no line
    const hasMetric = (r) => typeof (r.summary || {})[metric] === "number";
    const lined = metric && runs.some(hasMetric) ? runs.filter(hasMetric) : runs;
    const rows = lined.map((r) => {
      const values = {};
      for (const k of chosen) values[k] = valueOf(r, `config.${k}`);
      if (metric) values[`summary:${metric}`] = (r.summary || {})[metric];
      return { label: r._label, color: colorByMetric ? null : r._color, values };
    });
    const res = drawParcoords(pcCanvas, rows, axes, {
      width: Math.max(400, pcHost.clientWidth), height: 340, colorAxis: metric ? `summary:${metric}` : null,
      label: (k) => (k.startsWith("summary:") ? `▸ ${k.slice(8)}` : k),
    });
    pcNote.textContent = colorByMetric && metric ? `${res.drawn} runs · line colour: ${metric} (dark blue = low, orange = high)` : `${res.drawn} runs`;
    pcCanvas.dataset.lines = String(res.drawn);
    pcCanvas.dataset.axes = String(axes.length);
    pcCanvas.dataset.axisKeys = JSON.stringify(axes);
    pcCanvas.dataset.linked = JSON.stringify(res.linked || []);
  }
  function drawSC() {
    const ys = runs.map((r) => (r.summary || {})[ySel.value]).filter((v) => typeof v === "number" && Number.isFinite(v));
    const lo = Math.min(...ys), hi = Math.max(...ys);
    const pts = runs.map((r) => {
      const y = (r.summary || {})[ySel.value];
      return { x: valueOf(r, xSel.value), y, label: r._label, color: colorByMetric ? viridis(hi > lo ? (y - lo) / (hi - lo) : 0.5) : r._color };
    });
    const res = drawScatter(scCanvas, pts, { width: Math.max(400, scHost.clientWidth), height: 300, xLabel: xSel.value, yLabel: ySel.value, tooltip: tip });
    scCanvas.dataset.points = String(res.drawn);
  }
  metricSel.addEventListener("change", drawPC);
  xSel.addEventListener("change", drawSC);
  ySel.addEventListener("change", drawSC);
  drawPC();
  drawSC();
  const ro = new ResizeObserver(() => { drawPC(); drawSC(); });
  ro.observe(pcHost);
  ctx.onLeave(() => ro.disconnect());
  return {
    // analysis page: follow its metric, and put the most important key on the scatter's x axis
    setMetric(metric, xKey) {
      if (metricOpts.includes(metric)) { metricSel.value = metric; ySel.value = metric; }
      if (xKey && allKeys.includes(xKey) && (!xKey.startsWith("config.") || common(xKey.slice(7)))) xSel.value = xKey;
      drawPC();
      drawSC();
    },
  };
}
