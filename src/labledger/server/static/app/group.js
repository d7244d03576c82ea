// Run hierarchy views: a run's children (an Optuna study's trials, a sweep's runs) and a
// group page (`#/group/NAME`), both ranked by a metric the user picks.
import { el, add, clear, colorFor, fmtValue, isNum, section, statusBadge } from "./util.js";
import { api } from "./api.js";
import { guessMaximize } from "./analysis.js";
import { LineChart, pointsFor, toXY } from "./charts.js";
import { bandSpec, setLabels, singleRunsToggle } from "./bands.js";

const QUOTE = (s) => `"${String(s).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;

// A ranked table of the runs matching `filter`; `host` gets a metric picker and the table.
export async function rankedRuns(host, filter, { empty = "no runs", preferred = null, maximizeHint = null, onMetric = null } = {}) {
  const res = await api.runs({ filter, limit: 1000, total: false });
  const runs = res.runs || [];
  clear(host);
  if (!runs.length) { host.append(el("p", { class: "muted", text: empty })); return runs; }
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.summary || {})))].filter((k) => !k.startsWith("system/")).sort();
  let metric = preferred && keys.includes(preferred) ? preferred : (keys.includes("value") ? "value" : keys[0] || null);
  let maximize = typeof maximizeHint === "boolean" && metric === preferred ? maximizeHint : (metric ? guessMaximize(metric) : true);
  const picker = el("select", { class: "rank-metric", onchange: () => { metric = picker.value; maximize = guessMaximize(metric); draw(); } },
    keys.map((k) => el("option", { value: k, text: k, selected: k === metric })));
  const dir = el("button", { class: "button rank-dir", type: "button", onclick: () => { maximize = !maximize; draw(); } });
  const tableHost = el("div", { class: "rank-table" });
  host.append(el("div", { class: "rank-controls" }, keys.length ? el("label", null, "rank by ", picker, " ", dir) : null), tableHost);
  function draw() {
    if (onMetric && metric) onMetric(metric);
    dir.textContent = maximize ? "highest first" : "lowest first";
    const val = (r) => (metric ? (r.summary || {})[metric] : undefined);
    const sorted = [...runs].sort((a, b) => {
      const va = val(a), vb = val(b);
      if (!isNum(va) && !isNum(vb)) return a.created_at - b.created_at;
      if (!isNum(va)) return 1;
      if (!isNum(vb)) return -1;
      return maximize ? vb - va : va - vb;
    });
    let rank = 0;
    clear(tableHost).append(el("table", { class: "grid compact ranked-runs" },
      el("thead", null, el("tr", null, ["#", "Run", "Status", "Job type", metric || "metric"].map((h, i) => el("th", { class: i === 4 ? "num" : "", text: h })))),
      el("tbody", null, sorted.map((r) => {
        const v = val(r);
        const n = isNum(v) ? String(++rank) : "";
        return el("tr", { "data-run": r.id },
          el("td", { class: "num", text: n }),
          el("td", null, el("a", { href: `#/run/${encodeURIComponent(r.id)}`, text: r.name || r.id.slice(0, 8) })),
          el("td", null, statusBadge(r.status)),
          el("td", { text: r.job_type || "" }),
          el("td", { class: "num", text: v === undefined ? "" : fmtValue(v) }));
      }))));
  }
  draw();
  return runs;
}

// The children of `run`, as a section for the run page (nothing when it has none).
export async function renderChildren(host, run) {
  const body = el("div");
  const sec = section("Child runs", body);
  sec.id = "sec-children";
  const cfg = run.config || {};
  const direction = cfg.direction === "maximize" ? true : cfg.direction === "minimize" ? false : null;
  const runs = await rankedRuns(body, `parent_run_id = ${QUOTE(run.id)}`, { preferred: cfg.metric || null, maximizeHint: direction });
  clear(host);
  if (runs.length) add(host, sec);
}

// The study's metric and direction: a run of the group that names them in its config
// (an Optuna study, a sweep controller: {"metric": "val_acc", "direction": "maximize"}).
export function studyMetric(runs) {
  const study = runs.find((r) => r.job_type === "study" && typeof (r.config || {}).metric === "string")
    || runs.find((r) => typeof (r.config || {}).metric === "string");
  if (!study) return { metric: null, maximize: null };
  const dir = study.config.direction;
  return { metric: study.config.metric, maximize: dir === "maximize" ? true : dir === "minimize" ? false : null };
}

export async function renderGroup(main, name, q, ctx) {
  ctx.crumbs([{ label: "Projects", href: "#/" }, { label: "All runs", href: "#/runs" }, { label: `group ${name}` }]);
  main.className = "group-page";
  const filter = `group = ${QUOTE(name)}`;
  const body = el("div");
  main.append(section(`Group ${name}`, body));
  const bandHost = el("div", { class: "chart-grid group-bands" });
  const bandSec = section("Replicate sets", bandHost);
  bandSec.id = "sec-bands";
  // rank by the study's metric (the page's ?metric= wins), in the study's direction
  const probe = await api.runs({ filter, limit: 1000, total: false });
  if (!ctx.alive()) return;
  const study = studyMetric(probe.runs || []);
  let shown = null;
  const bands = { chart: null, single: q.get("single") === "1" };
  ctx.onLeave(() => { if (bands.chart) bands.chart.destroy(); });
  const sets = setLabels((await api.replicates({ filter })).sets || []);
  sets.forEach((s, i) => { s.color = colorFor(i); });
  async function drawBands(metric) {
    if (!sets.some((s) => s.n > 1) || !metric) return;
    shown = metric;
    const ids = sets.flatMap((s) => s.runs).slice(0, 100);
    const per = await Promise.all(ids.map((id) => api.series([id], [metric], pointsFor(800)).catch(() => ({ series: [] }))));
    if (!ctx.alive() || shown !== metric) return;
    const got = new Map(per.flatMap((res) => res.series.map((s) => [s.run_id, toXY(s, "step")])));
    const spec = bandSpec(metric, "step", sets, (id) => got.get(id) || null, { single: bands.single });
    if (bands.chart) bands.chart.set(spec); else bands.chart = new LineChart(bandHost, spec, { height: 240 });
    bandHost.dataset.metric = metric;
  }
  if (sets.some((s) => s.n > 1)) {
    bandSec.querySelector("h2")?.after(singleRunsToggle(bands.single, (v) => { bands.single = v; shown = null; drawBands(body.querySelector("select.rank-metric")?.value); }));
    main.append(bandSec);
  }
  await rankedRuns(body, filter, {
    empty: "no runs in this group",
    preferred: q.get("metric") || study.metric,
    maximizeHint: q.get("metric") ? null : study.maximize,
    onMetric: (m) => { if (m !== shown) drawBands(m); },
  });
  if (ctx.alive()) main.dataset.loaded = "1";
}
