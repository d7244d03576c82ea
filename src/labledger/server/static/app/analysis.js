// Analysis page for a project: leaderboard and parameter importance for a chosen
// metric, with parallel coordinates and a scatter over the (filtered) runs.
import { el, clear, flatten, fmtValue, section, statusBadge, fmtCount, amendedMarker } from "./util.js";
import { api, ApiError } from "./api.js";
import { barList } from "./plots.js";
import { renderRelations } from "./compare.js";

const MAX_RUNS = 2000;
const HIGHER_IS_BETTER = /(acc|accuracy|f1|auc|precision|recall|score|r2|map|iou|bleu|rouge|reward|return|ndcg|hit)/i;

export function guessMaximize(metric) {
  return HIGHER_IS_BETTER.test(metric) && !/(loss|error|err|mse|mae|rmse|perplexity|ppl)/i.test(metric);
}

export async function renderAnalysis(main, project, q, ctx) {
  const base = project ? [{ label: "Projects", href: "#/" }, { label: project, href: `#/p/${encodeURIComponent(project)}` }] : [{ label: "Projects", href: "#/" }, { label: "All runs", href: "#/runs" }];
  ctx.crumbs([...base, { label: "Analysis" }]);
  main.className = "analysis-page";
  const keys = await api.keys({ project, sample: 500 });
  if (!ctx.alive()) return;
  const metrics = keys.summary.filter((k) => !k.startsWith("system/"));
  const state = {
    metric: metrics.includes(q.get("metric")) ? q.get("metric") : metrics[0] || "",
    filter: q.get("filter") || "",
    by: q.get("by") === "config" ? "config" : "run",
  };
  state.max = q.has("max") ? q.get("max") === "1" : guessMaximize(state.metric);

  const metricSel = el("select", { "aria-label": "metric", class: "metric-select" }, metrics.map((k) => el("option", { value: k, text: k, selected: k === state.metric })));
  const dirSel = el("select", { "aria-label": "direction" }, el("option", { value: "1", text: "higher is better", selected: state.max }), el("option", { value: "0", text: "lower is better", selected: !state.max }));
  const filterInput = el("input", { type: "search", class: "filter-input mono", value: state.filter, spellcheck: "false", placeholder: "filter the runs to analyse", "aria-label": "filter" });
  const filterError = el("pre", { class: "filter-error", role: "alert", hidden: true });
  const info = el("span", { class: "muted" });
  main.append(el("div", { class: "page-head" }, el("h1", { text: `Analysis${project ? ` · ${project}` : ""}` }), info),
    el("div", { class: "toolbar" }, el("label", { class: "inline" }, "metric ", metricSel), dirSel,
      el("form", { class: "filter-form", onsubmit: (e) => { e.preventDefault(); state.filter = filterInput.value.trim(); reload(); } },
        filterInput, el("button", { type: "submit", class: "button", text: "Apply" }))),
    filterError);
  if (!metrics.length) {
    main.append(el("div", { class: "card empty" }, el("p", { text: "No summary metrics in these runs yet." })));
    return;
  }
  const bySel = el("select", { "aria-label": "leaderboard rows", class: "board-by" },
    el("option", { value: "run", text: "one row per run", selected: state.by !== "config" }),
    el("option", { value: "config", text: "one row per configuration (mean ± std over seeds)", selected: state.by === "config" }));
  bySel.addEventListener("change", () => { state.by = bySel.value; sync(); loadLeaderboard(); });
  const lbHost = el("div");
  const impHost = el("div");
  const lbSec = section("Leaderboard", el("div", null, el("div", { class: "toolbar" }, bySel), lbHost));
  lbSec.id = "leaderboard";
  const impSec = section("Parameter importance", impHost);
  impSec.id = "importance";
  // the leaderboard gets the room (names on one line); importance beside it
  main.append(el("div", { class: "two-col wide-left analysis-top" }, lbSec, impSec));
  const relHost = el("div");
  main.append(relHost);

  const sync = () => ctx.setQuery({ metric: state.metric, max: state.max ? "1" : "0", filter: state.filter, by: state.by });

  async function loadLeaderboard() {
    clear(lbHost).append(el("p", { class: "muted", text: "loading…" }));
    try {
      const res = await api.leaderboard({ project, metric: state.metric, max: state.max ? "true" : "false", top: 15, filter: state.filter, by: state.by });
      if (!ctx.alive()) return;
      if (res.by === "config") { clear(lbHost).append(configBoard(res.runs || [], state.metric)); return; }
      const rows = res.runs || [];
      const flats = rows.map((r) => flatten(r.config || {}));
      const allKeys = [...new Set(flats.flatMap((f) => Object.keys(f)))].sort();
      const cfgKeys = allKeys.filter((k) => new Set(flats.map((f) => JSON.stringify(f[k]))).size > 1).slice(0, 5);
      clear(lbHost).append(rows.length ? el("div", { class: "scroll-x" }, el("table", { class: "grid compact leaderboard" },
        el("thead", null, el("tr", null, el("th", { class: "num", text: "#" }), el("th", { text: "Run" }), el("th", { text: "Status" }),
          el("th", { class: "num", text: state.metric }), cfgKeys.map((k) => el("th", { class: "num", text: k })))),
        el("tbody", null, rows.map((r, i) => {
          const flat = flatten(r.config || {});
          return el("tr", null, el("td", { class: "num", text: String(r.rank ?? i + 1) }),
            el("td", { class: "run-name-cell" }, el("a", { href: `#/run/${encodeURIComponent(r.id)}`, title: r.name || r.id, text: r.name || String(r.id).slice(0, 8) })),
            el("td", null, r.status ? statusBadge(r.status) : null),
            el("td", { class: "num strong" }, fmtValue(r.value ?? (r.summary || {})[state.metric]),
              // ranked by the sealed value; an amendment made after the run ended beside it
              r.amended ? " " : null, amendedMarker({ amended: r.amended ? { [state.metric]: r.amended } : {} }, state.metric)),
            cfgKeys.map((k) => el("td", { class: "num mono", text: fmtValue(flat[k]) })));
        }))))
        : el("p", { class: "muted", text: "No run has this metric." }));
    } catch (e) {
      if (!ctx.alive()) return;
      clear(lbHost).append(el("p", { class: "error-box", text: e.message }));
    }
  }

  async function loadImportance() {
    clear(impHost).append(el("p", { class: "muted", text: "computing…" }));
    try {
      const res = await api.importance({ project, metric: state.metric, filter: state.filter });
      if (!ctx.alive()) return;
      const items = (res.importances || []).filter((p) => !p.constant).map((p) => ({
        label: p.key,
        value: p.importance,
        detail: [p.kind, p.log_scale ? "log scale" : "", p.spearman !== null && p.spearman !== undefined ? `Spearman ${fmtValue(p.spearman)}` : "", p.missing ? `missing in ${p.missing} runs` : ""].filter(Boolean).join(" · "),
        extra: p.spearman,
      }));
      const constant = (res.importances || []).filter((p) => p.constant).map((p) => p.key);
      // few runs: a forest fitted to them says 1.0 and 0; show the warning and the rank
      // correlations instead of bars
      const ranked = res.small_sample
        ? el("table", { class: "grid compact rank-correlations" },
          el("thead", null, el("tr", null, el("th", { text: "factor" }), el("th", { class: "num", text: "Spearman" }), el("th", { text: "kind" }))),
          el("tbody", null, (res.importances || []).filter((p) => !p.constant).map((p) => el("tr", null,
            el("td", { class: "mono", text: p.key }),
            el("td", { class: "num mono", text: p.spearman === null || p.spearman === undefined ? "–" : fmtValue(p.spearman) }),
            el("td", { class: "muted", text: [p.source && p.source !== "config" ? p.source : "", p.kind].filter(Boolean).join(" · ") })))))
        : null;
      const floor = typeof res.noise_floor === "number"
        ? el("p", { class: "noise-floor small", text: `seed noise floor: ${Math.round(res.noise_floor * 100)}% of the variance of ${state.metric} lies inside replicate sets (runs that differ only in their seed)` })
        : null;
      clear(impHost).append(
        res.warning ? el("p", { class: "warn-box small", role: "note", text: `warning: ${res.warning}` }) : el("span"),
        ranked && items.length ? ranked
          : items.length ? barList(items, { format: (v) => fmtValue(typeof v === "number" ? Number(v.toFixed(3)) : v) }) : el("p", { class: "muted", text: res.message || "No config key varies across these runs." }),
        floor || el("span"),
        constant.length ? el("p", { class: "muted small", text: `constant (not ranked): ${constant.join(", ")}` }) : el("span"),
        el("p", { class: "muted small", text: [res.method || "", res.n_runs ? `${fmtCount(res.n_runs)} runs` : ""].filter(Boolean).join(" · ") }),
      );
      impHost.dataset.items = String(items.length);
      topKey = items.length ? items[0].label : null;
      if (relations && topKey) relations.setMetric(state.metric, `config.${topKey}`);
    } catch (e) {
      if (!ctx.alive()) return;
      clear(impHost).append(el("p", { class: "error-box", text: e.message }));
    }
  }

  let relations = null;
  let topKey = null;
  async function loadRuns() {
    try {
      const res = await api.runs({ project, filter: state.filter, limit: MAX_RUNS, total: true });
      if (!ctx.alive()) return;
      filterError.hidden = true;
      const runs = res.runs;
      runs.forEach((r) => { r._label = r.name || r.id.slice(0, 8); r._flat = flatten(r.config || {}); });
      info.textContent = res.total > runs.length ? `${fmtCount(runs.length)} most recent of ${fmtCount(res.total)} runs` : `${fmtCount(runs.length)} runs`;
      const configKeys = [...new Set(runs.flatMap((r) => Object.keys(r._flat)))].sort();
      const summaryKeys = [...new Set(runs.flatMap((r) => Object.keys(r.summary || {})))].sort();
      // keys that vary among the runs having them (a sweep parent's own keys do not count)
      const varying = configKeys.filter((k) => new Set(runs.filter((r) => k in r._flat).map((r) => JSON.stringify(r._flat[k]))).size > 1);
      clear(relHost);
      relations = renderRelations(relHost, runs, { configKeys, summaryKeys, diffKeys: varying, ctx, colorByMetric: true });
      relations.setMetric(state.metric, topKey ? `config.${topKey}` : null);
    } catch (e) {
      if (!ctx.alive()) return;
      if (e instanceof ApiError && e.status < 500) { filterError.hidden = false; filterError.textContent = e.message; } else throw e;
    }
  }

  async function reload() {
    sync();
    await Promise.all([loadRuns(), loadLeaderboard(), loadImportance()]);
    if (ctx.alive()) main.dataset.loaded = "1";
  }
  metricSel.addEventListener("change", () => {
    state.metric = metricSel.value;
    state.max = guessMaximize(state.metric);
    dirSel.value = state.max ? "1" : "0";
    sync();
    if (relations) relations.setMetric(state.metric);
    loadLeaderboard();
    loadImportance();
  });
  dirSel.addEventListener("change", () => { state.max = dirSel.value === "1"; sync(); loadLeaderboard(); });
  await reload();
}

// The leaderboard by configuration: replicate sets ranked by their mean over seeds, with
// std, n, the 95% interval and whether each is tied with the top (Welch's t-test).
export function configBoard(rows, metric) {
  if (!rows.length) return el("p", { class: "muted", text: "No run has this metric." });
  const flats = rows.map((r) => r.config || {});
  const keys = [...new Set(flats.flatMap((f) => Object.keys(f)))].sort()
    .filter((k) => new Set(flats.map((f) => JSON.stringify(f[k]))).size > 1).slice(0, 5);
  const code = new Set(rows.map((r) => `${r.commit}|${r.patch_sha256}`)).size > 1;
  const verdict = (r) => r.rank === 1 ? "top" : r.tied_with_best === null ? "noise unknown" : r.tied_with_best ? "tied" : "worse";
  return el("div", { class: "scroll-x" }, el("table", { class: "grid compact leaderboard config-board" },
    el("thead", null, el("tr", null, el("th", { class: "num", text: "#" }), el("th", { class: "num", text: `${metric} (mean ± std)` }),
      el("th", { class: "num", text: "n" }), el("th", { class: "num", text: "95% interval" }), el("th", { text: "vs top" }),
      keys.map((k) => el("th", { class: "num", text: k })), code ? el("th", { text: "code" }) : null)),
    el("tbody", null, rows.map((r) => el("tr", { "data-set": r.set, "data-tied": String(r.tied_with_best) },
      el("td", { class: "num", text: String(r.rank) }),
      el("td", { class: "num strong", text: r.n > 1 ? `${fmtValue(r.mean)} ± ${fmtValue(r.std)}` : fmtValue(r.mean) }),
      el("td", { class: "num", text: String(r.n) }),
      el("td", { class: "num mono", text: r.n > 1 ? `[${fmtValue(r.ci_low)}, ${fmtValue(r.ci_high)}]` : (r.note || "") }),
      el("td", { class: `tie tie-${verdict(r).replace(" ", "-")}`, title: r.p_value === null || r.p_value === undefined ? "" : `Welch's t-test vs the top: p = ${fmtValue(r.p_value)}`, text: verdict(r) }),
      keys.map((k) => el("td", { class: "num mono", text: fmtValue((r.config || {})[k]) })),
      code ? el("td", { class: "mono", text: `${String(r.commit || "-").slice(0, 8)}${r.patch_sha256 ? " +patch" : ""}` }) : null)))));
}
