// Runs table: server-side paging, sorting and filtering (the filter language), a
// column chooser for config and summary keys, multi-select to compare, live refresh.
// Metrics first: the project's primary metric (the one last sorted by, else the
// most-logged validation metric) right after the name, then its trend, then the config
// keys that vary; keys with one value on every listed run are said once above the table;
// identity (status, runtime, short id, short author, age) after the numbers. The name
// column stays put while the table scrolls sideways.
import { add, el, clear, choosePrimary, fmtAgo, fmtCount, fmtDuration, fmtMetric, fmtTime, fmtValue, rememberPrimary, rememberedPrimary, runValue, shortAuthor, statusBadge, verdictBadge, amendedMarker } from "./util.js";
import { api, ApiError } from "./api.js";

const PAGE_SIZES = [25, 50, 100, 250, 500, 1000];
const BASE_SORTABLE = { name: "name", status: "status", created: "created_at", author: "author" };

function selectionKey(project) {
  return `labledger.selected.${project || "*"}`;
}

function loadSelection(project) {
  try {
    return new Map(JSON.parse(sessionStorage.getItem(selectionKey(project)) || "[]"));
  } catch (e) {
    return new Map();
  }
}

function reproCell(r) {
  if (!r.repro) return el("span");
  return el("span", { class: "repro-cell" }, verdictBadge(r.repro),
    r.repro_of ? el("span", { class: "muted small" }, " of ", el("a", { class: "mono", href: `#/run/${encodeURIComponent(r.repro_of)}`, text: String(r.repro_of).slice(0, 8) })) : null);
}

// The model versions a run is behind: "NAME vN @alias", each a link to the model's page.
function modelCell(versions) {
  if (!versions) return el("span");
  return el("span", { class: "model-cell" }, versions.flatMap((v, i) => [
    i ? ", " : null,
    el("a", { href: `#/models/${encodeURIComponent(v.name)}`, text: `${v.name} v${v.version}` }),
    ...(v.aliases || []).flatMap((a) => [" ", el("span", { class: "badge model-alias", text: `@${a}` })]),
  ]));
}

export async function renderRuns(main, project, q, ctx) {
  ctx.crumbs(project ? [{ label: "Projects", href: "#/" }, { label: project }] : [{ label: "Projects", href: "#/" }, { label: "All runs" }]);
  const state = {
    filter: q.get("filter") || "",
    sort: (q.get("sort") || "").split(",").filter(Boolean),
    page: Math.max(0, parseInt(q.get("page") || "0", 10) || 0),
    size: PAGE_SIZES.includes(+q.get("size")) ? +q.get("size") : 50,
    cols: q.has("cols") ? q.get("cols").split(",").filter(Boolean) : null,
    spark: q.get("spark") || null,
    primary: null,
  };
  const sparks = new Map(); // `${key}|${run id}` -> [values]
  const selected = loadSelection(project); // id -> name
  const saveSelection = () => sessionStorage.setItem(selectionKey(project), JSON.stringify([...selected]));

  // ---- skeleton
  const totalEl = el("span", { class: "muted total" });
  const compareBtn = el("a", { class: "button primary compare-btn", href: "#/compare" });
  const clearSel = el("button", { type: "button", class: "link", text: "clear selection" });
  const analysisHref = project ? `#/p/${encodeURIComponent(project)}/analysis` : "#/analysis";
  const analysisLink = el("a", { class: "button", href: analysisHref, text: "Analysis" });
  main.append(el("div", { class: "page-head" },
    el("h1", { text: project || "All runs" }), totalEl, el("span", { class: "spacer" }), clearSel, analysisLink, compareBtn));

  const filterInput = el("input", {
    type: "search", class: "filter-input mono", spellcheck: "false", value: state.filter,
    placeholder: 'filter, e.g. config.lr < 0.01 and summary.val_acc >= 0.9 and status = "finished"',
    "aria-label": "filter",
  });
  const filterError = el("pre", { class: "filter-error", role: "alert", hidden: true });
  const colsBtn = el("button", { type: "button", class: "button", text: "Columns" });
  const sizeSel = el("select", { "aria-label": "runs per page" },
    PAGE_SIZES.map((n) => el("option", { value: String(n), text: `${n} / page`, selected: n === state.size })));
  const chooser = el("div", { class: "chooser card", hidden: true });
  const sparkSel = el("select", { class: "spark-select", "aria-label": "sparkline metric" });
  sparkSel.addEventListener("change", () => { state.spark = sparkSel.value || null; syncQuery(); renderTable(); loadSparks(); });
  main.append(el("div", { class: "toolbar" },
    el("form", { class: "filter-form", onsubmit: (e) => { e.preventDefault(); applyFilter(); } },
      filterInput, el("button", { type: "submit", class: "button", text: "Filter" })),
    el("label", { class: "inline" }, "Trend", sparkSel), colsBtn, sizeSel), filterError, chooser);

  const constantLine = el("p", { class: "constant-keys muted small", hidden: true });
  main.append(constantLine);
  const table = el("table", { class: "grid runs" });
  const pager = el("div", { class: "pager" });
  const tableCard = el("div", { class: "card flush table-wrap" }, table);
  // what does not fit the window is named, not silently cut: the columns off to the right
  const offscreen = el("p", { class: "offscreen-cols muted small", hidden: true });
  main.append(tableCard, offscreen, pager);
  function noteOffscreen() {
    const edge = tableCard.getBoundingClientRect().right;
    const out = [...table.querySelectorAll("thead th[data-col]")].filter((th) => th.getBoundingClientRect().left >= edge - 4)
      .map((th) => th.dataset.col.replace(/^(config|summary)\./, ""));
    offscreen.hidden = !out.length;
    offscreen.textContent = out.length ? `${out.length} more column${out.length === 1 ? "" : "s"} to the right (scroll sideways): ${out.join(", ")}` : "";
  }
  tableCard.addEventListener("scroll", () => requestAnimationFrame(noteOffscreen), { passive: true });
  window.addEventListener("resize", () => { if (ctx.alive()) requestAnimationFrame(noteOffscreen); });

  let keys = { config: [], summary: [], metrics: [] };
  let runs = [];
  let total = 0;
  // registered model versions by run id (the model registry): a Model column appears when
  // a listed run is behind one; fetched once, in the background
  const modelsByRun = new Map();
  api.versionsOfRun().then((versions) => {
    if (!ctx.alive() || !versions.length) return;
    for (const v of versions) {
      if (!modelsByRun.has(v.run_id)) modelsByRun.set(v.run_id, []);
      modelsByRun.get(v.run_id).push(v);
    }
    if (main.dataset.loaded === "1" && runs.some((r) => modelsByRun.has(r.id))) renderTable();
  }).catch(() => {});
  let capped = false; // the server stopped counting at `total` (shown as "10,000+")

  function syncQuery() {
    ctx.setQuery({ filter: state.filter, sort: state.sort, page: state.page || "", size: state.size === 50 ? "" : state.size, cols: state.cols, spark: state.spark || "" });
  }

  function updateCompare() {
    const ids = [...selected.keys()];
    compareBtn.textContent = ids.length ? `Compare ${ids.length}` : "Compare";
    compareBtn.classList.toggle("disabled", ids.length < 2);
    compareBtn.setAttribute("href", ids.length >= 2 ? `#/compare?ids=${ids.map(encodeURIComponent).join(",")}` : "#/compare");
    compareBtn.setAttribute("aria-disabled", ids.length < 2 ? "true" : "false");
    clearSel.hidden = !ids.length;
  }
  compareBtn.addEventListener("click", (e) => { if (selected.size < 2) e.preventDefault(); });
  clearSel.addEventListener("click", () => { selected.clear(); saveSelection(); updateCompare(); renderTable(); });

  function showFilterError(err) {
    if (!err) { filterError.hidden = true; filterInput.removeAttribute("aria-invalid"); return; }
    filterError.hidden = false;
    filterError.textContent = err.message;
    filterInput.setAttribute("aria-invalid", "true");
  }

  function columns() {
    const primary = state.primary;
    const extra = (state.cols || []).filter((k) => !primary || k !== `summary.${primary}`).map((k) => {
      const dot = k.indexOf(".");
      const prefix = k.slice(0, dot), label = k.slice(dot + 1);
      return { key: k, prefix, label, sort: k, value: (r) => runValue(r, k), cls: "num", fmt: prefix === "summary" ? (v) => fmtMetric(label, v) : null };
    });
    return [
      // the name stays in view (sticky) while the table scrolls sideways
      { key: "name", label: "Name", sort: "name", cls: "name-col", render: (r) => el("a", { class: "run-link", href: `#/run/${r.id}`, title: r.name || r.id, text: r.name || r.id.slice(0, 8) }) },
      // the primary metric and its trend lead: the first thing a row says is how the run did
      ...(primary ? [{ key: "primary", prefix: "★", label: primary, sort: `summary.${primary}`, cls: "num primary-col", value: (r) => (r.summary || {})[primary], fmt: (v) => fmtMetric(primary, v) }] : []),
      ...(state.spark ? [{ key: "spark", label: state.spark === primary ? "trend" : `trend ${state.spark}`, cls: "spark-col", render: (r) => sparkline(sparks.get(`${state.spark}|${r.id}`)) }] : []),
      ...extra,
      { key: "status", label: "Status", sort: "status", render: (r) => statusBadge(r.status) },
      { key: "runtime", label: "Runtime", cls: "num", value: (r) => r.runtime_s, fmt: fmtDuration },
      { key: "id", label: "ID", render: (r) => el("span", { class: "mono muted", title: r.id, text: r.id.slice(0, 8) }) },
      { key: "author", label: "Author", sort: "author", render: (r) => el("span", { class: "author", title: r.author || "", text: shortAuthor(r.author) }) },
      { key: "created", label: "Created", sort: "created_at", render: (r) => el("span", { title: fmtTime(r.created_at), text: fmtAgo(r.created_at) }) },
      // newest reproduction verdict (labledger repro), shown when a listed run has one, as in `ls`
      ...(runs.some((r) => r.repro) ? [{ key: "repro", label: "Repro", render: reproCell }] : []),
      ...(runs.some((r) => modelsByRun.has(r.id)) ? [{ key: "model", label: "Model", render: (r) => modelCell(modelsByRun.get(r.id)) }] : []),
      { key: "tags", label: "Tags", render: (r) => el("span", { class: "tags" }, (r.tags || []).slice(0, 4).map((t) => el("span", { class: "tag", text: t }))) },
    ];
  }

  // config keys with one value on every listed run: said once above the table, not per row
  function renderConstants() {
    const shown = new Set(state.cols || []);
    const same = [];
    if (runs.length > 1) {
      for (const k of keys.config || []) {
        if (shown.has(`config.${k}`)) continue;
        const vals = runs.map((r) => runValue(r, `config.${k}`));
        if (vals.some((v) => v === undefined)) continue;
        const first = JSON.stringify(vals[0]);
        if (vals.every((v) => JSON.stringify(v) === first)) same.push([k, vals[0]]);
      }
    }
    constantLine.hidden = !same.length;
    clear(constantLine);
    if (same.length) {
      add(constantLine, el("span", { text: "Same in every listed run: " }),
        same.map(([k, v], i) => el("span", { class: "constant-key", dataset: { key: k } }, i ? " · " : "", el("span", { class: "mono", text: `${k} = ${fmtValue(v)}` }))));
    }
  }

  function sortState(key) {
    const i = state.sort.findIndex((s) => s.replace(/^-/, "") === key);
    if (i !== 0) return null;
    return state.sort[0].startsWith("-") ? "desc" : "asc";
  }

  function renderHead(cols) {
    const pageIds = runs.map((r) => r.id);
    const allOn = pageIds.length > 0 && pageIds.every((id) => selected.has(id));
    const headBox = el("input", { type: "checkbox", "aria-label": "select page", checked: allOn });
    headBox.addEventListener("change", () => {
      for (const r of runs) { if (headBox.checked) selected.set(r.id, r.name); else selected.delete(r.id); }
      saveSelection(); updateCompare(); renderTable();
    });
    return el("thead", null, el("tr", null, el("th", { class: "sel" }, headBox), cols.map((c) => {
      const dir = c.sort ? sortState(c.sort) : null;
      const th = el("th", { class: [c.cls || "", c.sort ? "sortable" : "", dir ? `sorted-${dir}` : ""].join(" ").trim(), title: c.sort ? `sort by ${c.sort}` : "", dataset: { col: c.key } },
        c.prefix ? el("span", { class: "col-prefix", text: c.prefix }) : null, el("span", { text: c.label }), dir ? el("span", { class: "arrow", text: dir === "asc" ? " ▲" : " ▼" }) : null);
      if (c.sort) {
        th.dataset.sort = c.sort;
        th.addEventListener("click", () => {
          const cur = sortState(c.sort);
          const desc = cur === null ? c.sort === "created_at" || c.sort.startsWith("summary.") : cur === "asc";
          state.sort = [`${desc ? "-" : ""}${c.sort}`];
          state.page = 0;
          // the metric sorted by becomes the project's primary metric (remembered)
          if (c.sort.startsWith("summary.") && !c.sort.startsWith("summary.system/")) {
            const m = c.sort.slice(8);
            const followSpark = !state.spark || state.spark === state.primary;
            state.primary = m;
            rememberPrimary(project, m);
            if (followSpark) { state.spark = m; fillSparkSelect(); }
          }
          load();
        });
      }
      return th;
    })));
  }

  function renderTable() {
    const cols = columns();
    const body = el("tbody");
    const frag = document.createDocumentFragment();
    for (const r of runs) {
      const box = el("input", { type: "checkbox", "aria-label": `select ${r.name}`, checked: selected.has(r.id) });
      box.addEventListener("change", () => {
        if (box.checked) selected.set(r.id, r.name); else selected.delete(r.id);
        saveSelection(); updateCompare();
      });
      const tr = el("tr", { class: `run-row${selected.has(r.id) ? " selected" : ""}`, dataset: { id: r.id, status: r.status } }, el("td", { class: "sel" }, box));
      for (const c of cols) {
        const td = el("td", { class: c.cls || "" });
        if (c.render) td.append(c.render(r));
        else {
          const v = c.value(r);
          td.textContent = c.fmt ? (v === undefined ? "" : c.fmt(v)) : fmtValue(v);
          if (typeof v === "string" && v.length > 40) td.title = v;
          // the sealed value, with an amendment made after the run ended beside it
          const metric = c.key === "primary" ? state.primary : c.key.startsWith("summary.") ? c.key.slice(8) : null;
          const mark = metric ? amendedMarker(r, metric) : null;
          if (mark) { td.append(" ", mark); td.classList.add("has-amendment"); }
        }
        tr.append(td);
      }
      frag.append(tr);
    }
    body.append(frag);
    clear(table).append(renderHead(cols), body);
    renderConstants();
    requestAnimationFrame(noteOffscreen);
    if (!runs.length) {
      table.append(el("tbody", null, el("tr", null, el("td", { class: "empty-row muted", colspan: String(cols.length + 1), text: state.filter ? "No runs match this filter." : "No runs." }))));
    }
    renderPager();
  }

  function renderPager() {
    const first = total ? state.page * state.size + 1 : 0;
    const last = Math.min(total, (state.page + 1) * state.size);
    const pages = capped ? state.page + 2 : Math.max(1, Math.ceil(total / state.size));
    const totalText = capped ? `${fmtCount(total - 1)}+` : fmtCount(total);
    totalEl.textContent = `${totalText} runs`;
    const prev = el("button", { type: "button", class: "button", text: "‹ Prev", disabled: state.page === 0 });
    const next = el("button", { type: "button", class: "button", text: "Next ›", disabled: capped ? runs.length < state.size : state.page + 1 >= pages });
    prev.addEventListener("click", () => { state.page--; load(); });
    next.addEventListener("click", () => { state.page++; load(); });
    const pageInput = el("input", { type: "number", min: "1", max: String(pages), value: String(state.page + 1), class: "page-input", "aria-label": "page" });
    pageInput.addEventListener("change", () => {
      state.page = Math.min(pages - 1, Math.max(0, (parseInt(pageInput.value, 10) || 1) - 1));
      load();
    });
    clear(pager).append(
      el("span", { class: "muted range", text: `${fmtCount(first)}–${fmtCount(capped ? state.page * state.size + runs.length : last)} of ${totalText}` }),
      el("span", { class: "spacer" }), prev, el("span", { class: "muted", text: "page" }), pageInput,
      el("span", { class: "muted", text: `of ${fmtCount(pages)}` }), next);
  }

  function fillSparkSelect() {
    const metrics = (keys.metrics || []).filter((k) => !k.startsWith("system/"));
    const system = (keys.metrics || []).filter((k) => k.startsWith("system/"));
    // the trend follows the primary metric unless the user chose another
    if (state.spark === null && metrics.length) state.spark = metrics.includes(state.primary) ? state.primary : metrics[0];
    // options one by one (append() given an array would add one text node "a,b,c")
    add(clear(sparkSel), el("option", { value: "", text: "none", selected: !state.spark }),
      [...metrics, ...system].map((k) => el("option", { value: k, text: k, selected: k === state.spark })));
  }

  let sparkSeq = 0;
  async function loadSparks() {
    const key = state.spark;
    if (!key || !runs.length) return;
    const my = ++sparkSeq;
    const ids = runs.map((r) => r.id).filter((id) => !sparks.has(`${key}|${id}`));
    for (let i = 0; i < ids.length; i += 64) {
      const res = await api.series(ids.slice(i, i + 64), [key], 48);
      if (my !== sparkSeq || !ctx.alive()) return;
      for (const sr of res.series) sparks.set(`${key}|${sr.run_id}`, sr.values.map(Number));
    }
    table.querySelectorAll("tr.run-row").forEach((tr) => {
      const td = tr.querySelector("td.spark-col");
      if (td) clear(td).append(sparkline(sparks.get(`${key}|${tr.dataset.id}`)));
    });
  }

  let seq = 0;
  async function load({ quiet = false } = {}) {
    const my = ++seq;
    syncQuery();
    if (!quiet) tableCard.classList.add("busy");
    try {
      const res = await api.runs({ project, filter: state.filter, order_by: state.sort, limit: state.size, offset: state.page * state.size, repro: true });
      if (my !== seq || !ctx.alive()) return;
      runs = res.runs;
      total = res.total;
      capped = !!res.total_capped;
      showFilterError(null);
      if (quiet) for (const r of runs) if (r.status === "running") sparks.delete(`${state.spark}|${r.id}`);
      renderTable();
      loadSparks().catch(() => {});
      ctx.live(runs.some((r) => r.status === "running"));
      main.dataset.loaded = "1";
    } catch (err) {
      if (my !== seq || !ctx.alive()) return;
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
        showFilterError(err); // the table keeps the last good result
      } else throw err;
    } finally {
      tableCard.classList.remove("busy");
    }
  }

  function applyFilter() {
    state.filter = filterInput.value.trim();
    state.page = 0;
    load();
  }

  sizeSel.addEventListener("change", () => { state.size = +sizeSel.value; state.page = 0; load(); });

  // ---- column chooser
  function renderChooser() {
    const chosen = new Set(state.cols || []);
    const search = el("input", { type: "search", placeholder: "search keys", class: "chooser-search", "aria-label": "search keys" });
    const lists = el("div", { class: "chooser-lists" });
    const group = (title, prefix, names) => {
      const items = names.map((n) => {
        const k = `${prefix}.${n}`;
        const box = el("input", { type: "checkbox", checked: chosen.has(k), dataset: { key: k } });
        box.addEventListener("change", () => {
          const cur = new Set(state.cols || []);
          if (box.checked) cur.add(k); else cur.delete(k);
          state.cols = [...(state.cols || []).filter((c) => cur.has(c)), ...[...cur].filter((c) => !(state.cols || []).includes(c))];
          syncQuery();
          renderTable();
        });
        return el("label", { class: "chooser-item", dataset: { key: k.toLowerCase() } }, box, el("span", { class: "mono", text: n }));
      });
      return el("div", { class: "chooser-group" }, el("h3", { text: `${title} (${names.length})` }), items.length ? items : el("p", { class: "muted", text: "none" }));
    };
    lists.append(group("Config", "config", keys.config), group("Summary", "summary", keys.summary));
    search.addEventListener("input", () => {
      const s = search.value.toLowerCase();
      lists.querySelectorAll(".chooser-item").forEach((it) => { it.hidden = s && !it.dataset.key.includes(s); });
    });
    clear(chooser).append(el("div", { class: "chooser-head" }, search,
      el("button", { type: "button", class: "button", text: "Done", onclick: () => { chooser.hidden = true; } })), lists);
  }
  colsBtn.addEventListener("click", () => {
    chooser.hidden = !chooser.hidden;
    if (!chooser.hidden) renderChooser();
  });

  updateCompare();
  const keysP = api.keys({ project, sample: 300 }).catch(() => ({ config: [], summary: [], metrics: [] }));
  keys = await keysP;
  if (!ctx.alive()) return;
  // the primary metric: the sort key when it is a metric, else the one remembered for the
  // project, else the most-logged validation metric (counted on a first page of runs)
  const sorted = (state.sort[0] || "").replace(/^-/, "");
  if (sorted.startsWith("summary.") && !sorted.startsWith("summary.system/") && keys.summary.includes(sorted.slice(8))) {
    state.primary = sorted.slice(8);
    rememberPrimary(project, state.primary);
  } else {
    let sample = [];
    try { sample = (await api.runs({ project, limit: 100 })).runs; } catch (e) { sample = []; }
    if (!ctx.alive()) return;
    state.primary = choosePrimary(keys.summary, sample, rememberedPrimary(project));
  }
  if (!state.cols) {
    // the config keys whose values differ between the runs (they tell the runs apart),
    // then the other metrics; constant keys are said once above the table instead
    const vary = keys.varying || { config: [], summary: [] };
    const varyingFirst = (all, v) => [...all.filter((k) => v.includes(k)), ...all.filter((k) => !v.includes(k))];
    const userSummary = keys.summary.filter((k) => !k.startsWith("system/") && k !== state.primary);
    state.cols = [
      ...keys.config.filter((k) => vary.config.includes(k)).slice(0, 5).map((k) => `config.${k}`),
      ...varyingFirst(userSummary, vary.summary).slice(0, 3).map((k) => `summary.${k}`),
    ];
  }
  fillSparkSelect();
  await load();
  ctx.poll(() => (runs.some((r) => r.status === "running") ? load({ quiet: true }) : undefined), 3000);
}

// A small inline SVG line of a metric's values (downsampled); empty when there are none.
const SVG = "http://www.w3.org/2000/svg";
export function sparkline(values, width = 96, height = 22) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "sparkline");
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const ys = (values || []).filter((v) => Number.isFinite(v));
  if (ys.length < 2) {
    if (ys.length === 1) svg.setAttribute("data-single", fmtValue(ys[0]));
    return ys.length === 1 ? el("span", { class: "mono small", text: fmtValue(ys[0]) }) : svg;
  }
  const lo = Math.min(...ys), hi = Math.max(...ys), span = hi - lo || 1;
  const pts = ys.map((v, i) => `${(i / (ys.length - 1)) * (width - 2) + 1},${height - 2 - ((v - lo) / span) * (height - 4)}`);
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", pts.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#2f6fab");
  line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  const title = document.createElementNS(SVG, "title");
  title.textContent = `${fmtValue(ys[0])} → ${fmtValue(ys[ys.length - 1])} (min ${fmtValue(lo)}, max ${fmtValue(hi)})`;
  svg.append(title);
  svg.setAttribute("data-points", String(ys.length));
  return svg;
}
