// Run page: header, then the run's own results first (summary metrics and their charts;
// a series of a single point is shown as its value, not as a one-dot chart), config,
// system metrics in a collapsed group, environment (git, captured patch as a diff,
// packages, hardware, seed), datasets, artifacts, lineage and reproduction verdicts.
// Values that were not recorded show as absent ("—"), never as "null". A running run
// refreshes itself every two seconds.
import { el, add, clear, fmtBytes, fmtDuration, fmtMetric, fmtTime, fmtValue, kvTable, metricUnit, section, statusBadge, colorFor, verdictBadge, amendedMarker } from "./util.js";
import { api, ApiError } from "./api.js";
import { LineChart, chartWidth, pointsFor, toXY } from "./charts.js";
import { renderChildren } from "./group.js";
import { renderMedia } from "./media.js";

const MAX_DIFF_LINES = 20000;
const SERIES_PER_REQUEST = 64;

export async function renderRun(main, ref, q, ctx) {
  const mediaKeys = api.mediaKeys(ref);  // asked beside the run, not after it
  mediaKeys.catch(() => {});
  let run = await api.run(ref);
  if (!ctx.alive()) return;
  ctx.crumbs([{ label: "Projects", href: "#/" }, { label: run.project, href: `#/p/${encodeURIComponent(run.project)}` }, { label: run.name || run.id.slice(0, 8) }]);
  main.className = "run-page";

  const header = el("div", { class: "run-header card" });
  const nav = el("nav", { class: "section-nav" });
  const body = el("div", { class: "run-body" });
  main.append(header, nav, body);

  const resultsHost = el("div", { class: "results" });
  const valuesHost = el("div", { class: "value-tiles" });
  const metricsHost = el("div", { class: "chart-grid" });
  const overview = el("div", { id: "sec-overview" });
  const systemTable = el("div");
  const systemValues = el("div", { class: "value-tiles" });
  const systemHost = el("div", { class: "chart-grid" });
  const envHost = el("div", { id: "sec-environment" });
  const metricsSec = section("Results", resultsHost, valuesHost, metricsHost);
  metricsSec.id = "sec-metrics";
  metricsSec.classList.add("results-card");
  const systemCount = el("span", { class: "muted small" });
  const systemSec = el("details", { class: "card system-group", id: "sec-system" },
    el("summary", null, el("h2", { class: "inline-h", text: "System metrics" }), " ", systemCount),
    systemTable, systemValues, systemHost);
  const childrenHost = el("div", { class: "children-host" });
  // rich results: hidden until the run turns out to have some (loaded once, lazily)
  const mediaHost = el("div", { class: "media-host" });
  const mediaSec = section("Rich results", mediaHost);
  mediaSec.id = "sec-media";
  mediaSec.hidden = true;
  renderMedia(mediaHost, run.id, mediaKeys).then((n) => { mediaSec.hidden = !n; }).catch(() => {});
  body.append(metricsSec, mediaSec, childrenHost, overview, systemSec, envHost);

  const navItems = [["Results", "sec-metrics"], ["Config", "sec-overview"], ["System", "sec-system"],
    ["Environment", "sec-environment"], ["Code", "sec-code"], ["Data & artifacts", "sec-artifacts"],
    ["Lineage", "sec-lineage"], ["Reproduction", "sec-repro"]];
  for (const [label, id] of navItems) {
    nav.append(el("a", { href: "#", text: label, onclick: (e) => { e.preventDefault(); const t = document.getElementById(id); if (t) t.scrollIntoView({ behavior: "smooth", block: "start" }); } }));
  }

  function renderHeader() {
    add(clear(header),
      el("div", { class: "run-title" }, el("h1", { class: "run-name", text: run.name || run.id }), statusBadge(run.status)),
      el("dl", { class: "facts" },
        fact("ID", el("span", { class: "mono", text: run.id })),
        fact("Project", el("a", { href: `#/p/${encodeURIComponent(run.project)}`, text: run.project })),
        fact("Author", el("span", { class: "run-author", text: run.author || "unknown" })),
        // provenance in the header: the commit (dirty, patch), the data digests, the verdict
        commitFact(),
        ...(run.datasets || []).slice(0, 3).map((d) => fact(`Data ${d.name || d.path || ""}`.trim(), el("span", { class: "mono run-data", title: d.sha256 ? `sha256 ${d.sha256}` : "", text: d.sha256 ? String(d.sha256).slice(0, 12) : "—" }))),
        reproFact,
        registeredFact,
        run.record_sha256 ? fact("Record", el("span", { class: "mono run-record", title: `sha256 ${run.record_sha256} (labledger audit verify)`, text: run.record_sha256.slice(0, 16) })) : null,
        fact("Created", fmtTime(run.created_at)),
        fact("Runtime", fmtDuration(run.runtime_s)),
        run.host ? fact("Host", `${run.host}${run.pid ? ` (pid ${run.pid})` : ""}`) : null,
        run.seed !== null && run.seed !== undefined ? fact("Seed", String(run.seed)) : null,
        run.exit_code !== null && run.exit_code !== undefined ? fact("Exit code", String(run.exit_code)) : null,
        run.group ? fact("Group", el("a", { href: `#/group/${encodeURIComponent(run.group)}`, class: "run-group", text: run.group })) : null,
        run.job_type ? fact("Job type", run.job_type) : null,
        run.parent_run_id ? fact("Parent", el("a", { href: `#/run/${encodeURIComponent(run.parent_run_id)}`, class: "mono", text: run.parent_run_id.slice(0, 8) })) : null),
      (run.tags || []).length ? el("div", { class: "tags" }, run.tags.map((t) => el("span", { class: "tag", text: t }))) : null,
      run.notes ? el("p", { class: "notes", text: run.notes }) : null,
      run.error ? el("pre", { class: "error-box run-error", text: run.error }) : null,
      editBox(),
      historyBox(),
    );
  }

  // the sealed value (as logged), and an amendment made after the run ended beside it
  function valueCell(k, v) {
    const td = el("td", { class: "num strong", text: fmtMetric(k, v) });
    const mark = amendedMarker(run, k);
    if (mark) td.append(" ", mark);
    return td;
  }
  function commitFact() {
    const git = (run.env || {}).git;
    if (!git) return null;
    const parts = [el("span", { class: "mono", text: git.commit ? String(git.commit).slice(0, 10) : "no commit" })];
    if (git.dirty) {
      parts.push(el("span", { class: "badge dirty", text: "dirty" }));
      parts.push(git.diff_sha256
        ? el("a", { class: "mono small", href: "#", title: `patch sha256 ${git.diff_sha256}`, text: `patch ${String(git.diff_sha256).slice(0, 8)}`, onclick: (e) => { e.preventDefault(); const t = document.getElementById("sec-code"); if (t) t.scrollIntoView({ behavior: "smooth", block: "start" }); } })
        : el("span", { class: "muted small", text: "patch not captured" }));
    }
    return fact("Commit", el("span", { class: "run-commit" }, parts.flatMap((p, i) => (i ? [" ", p] : [p]))));
  }
  // "Registered as NAME vN (@alias)": the model versions that point at this run (the
  // model registry, #/models), filled in when they arrive; hidden when there are none
  const registeredFact = fact("Registered as", el("span", { class: "run-registered" }));
  registeredFact.hidden = true;
  api.versionsOfRun(run.id).then((versions) => {
    const host = registeredFact.querySelector(".run-registered");
    if (!host || !versions.length) return;
    versions.forEach((v, i) => {
      if (i) host.append(", ");
      host.append(el("a", { class: "registered-link", href: `#/models/${encodeURIComponent(v.name)}`, text: `${v.name} v${v.version}` }),
        ...(v.aliases || []).flatMap((a) => [" ", el("span", { class: "badge model-alias", text: `@${a}` })]));
    });
    registeredFact.hidden = false;
  }).catch(() => {});
  // the newest reproduction verdict, filled in when it arrives
  const reproFact = fact("Reproduction", el("span", { class: "run-repro muted", text: "…" }));
  // one request serves the header's badge and the Reproduction section below
  // (kept on this page's run object, fetched fresh on every visit)
  run.reproAnswer = api.repro(run.id);
  run.reproAnswer.then((rep) => {
    const host = reproFact.querySelector(".run-repro");
    if (!host) return;
    clear(host).append(rep && rep.verdict ? verdictBadge(rep.verdict) : el("span", { class: "muted", text: "not reproduced yet" }));
  }).catch(() => { const host = reproFact.querySelector(".run-repro"); if (host) host.textContent = "—"; });

  function statTable(entries) {
    return el("table", { class: "grid compact stats" },
      el("thead", null, el("tr", null, ["Metric", "Value", "Min", "Max", "Points", "Last step"].map((h, i) => el("th", { class: i ? "num" : "", text: h })))),
      el("tbody", null, entries.map(([k, v, m]) => el("tr", null,
        el("td", { class: "mono", text: k }), valueCell(k, v),
        ...(m ? [m.min, m.max] : [undefined, undefined]).map((x) => absentCell(x, "num", (y) => fmtMetric(k, y))),
        ...(m ? [m.count, m.last_step] : [undefined, undefined]).map((x) => absentCell(x, "num"))))));
  }

  // notes and tags stay editable after a run ended; the server stores each change as an
  // edit event by the signed-in user (only the run's author or an admin may edit)
  function editBox() {
    const notes = el("textarea", { class: "edit-notes", rows: 2, "aria-label": "notes" });
    notes.value = run.notes || "";
    const tag = el("input", { class: "edit-tag", placeholder: "add a tag", "aria-label": "add a tag" });
    const msg = el("span", { class: "muted edit-msg" });
    const save = el("button", { class: "edit-save", text: "Save", onclick: async () => {
      const body = {};
      if (notes.value !== (run.notes || "")) body.notes = notes.value;
      if (tag.value.trim()) body.add_tags = [tag.value.trim()];
      if (!Object.keys(body).length) { msg.textContent = "nothing changed"; return; }
      try {
        await api.edit(run.id, body);
        run = await api.run(run.id);
        renderHeader();
      } catch (e) {
        msg.textContent = e.message;
        msg.className = "error-box edit-msg";
      }
    } });
    return el("details", { class: "run-edit" }, el("summary", { text: "Edit notes and tags" }), notes, el("div", null, tag, " ", save, " ", msg));
  }

  // a field that had no value reads "(unset)", not a raw null
  const editValue = (v) => (v === null || v === undefined ? "(unset)" : fmtValue(v));

  function historyBox() {
    const edits = run.edits || [];
    if (!edits.length) return null;
    return el("details", { class: "run-history", open: true },
      el("summary", { text: `History (${edits.length} edit${edits.length === 1 ? "" : "s"})` }),
      el("table", { class: "grid compact" }, el("tbody", null, edits.map((e) => el("tr", { class: "edit-row" },
        el("td", { text: fmtTime(e.at) }), el("td", { text: e.author || "?" }), el("td", { class: "mono", text: e.field }),
        el("td", { class: "mono", text: `${editValue(e.old)} → ${editValue(e.new)}` }),
        el("td", { class: "muted", text: (e.amendment ? "amendment" : "") + (e.reason ? `${e.amendment ? ": " : ""}${e.reason}` : "") }))))));
  }

  function renderOverview() {
    // the run's own metrics (summary values with their series statistics), system/* apart
    const metrics = run.metrics || {};
    const summary = run.summary || {};
    const keys = [...new Set([...Object.keys(summary), ...Object.keys(metrics)])].sort((a, b) => a.localeCompare(b));
    const rows = (sys) => keys.filter((k) => k.startsWith("system/") === sys)
      .map((k) => [k, k in summary ? summary[k] : (metrics[k] || {}).last, metrics[k]]);
    const user = rows(false), system = rows(true);
    clear(resultsHost).append(user.length ? statTable(user) : el("p", { class: "muted", text: "no metrics logged" }));
    clear(systemTable).append(system.length ? statTable(system) : el("p", { class: "muted", text: "no system metrics (keys starting with system/)" }));
    systemCount.textContent = system.length ? `${system.length} series (CPU, memory, disk, network), collapsed` : "none";
    clear(overview).append(section("Config", kvTable(run.config, { empty: "no config" })));
  }

  // ---- charts
  const charts = new Map(); // key -> LineChart
  function metricKeys() {
    const all = Object.keys(run.metrics || {}).sort();
    return { user: all.filter((k) => !k.startsWith("system/")), system: all.filter((k) => k.startsWith("system/")) };
  }
  async function loadCharts() {
    const { user, system } = metricKeys();
    const wanted = [...user, ...system];
    for (const [k, c] of charts) if (!wanted.includes(k)) { c.destroy(); charts.delete(k); }
    const pts = pointsFor(chartWidth(metricsHost) || 600);
    for (let i = 0; i < wanted.length; i += SERIES_PER_REQUEST) {
      const part = wanted.slice(i, i + SERIES_PER_REQUEST);
      const res = await api.series([run.id], part, pts);
      if (!ctx.alive()) return;
      for (const s of res.series) {
        const sys = s.key.startsWith("system/");
        const tiles = sys ? systemValues : valuesHost;
        const tileId = `tile-${s.key}`;
        if (s.total <= 1) {
          // one point is a value, not a chart: show it as such
          const c = charts.get(s.key);
          if (c) { c.destroy(); charts.delete(s.key); }
          const v = s.values.length ? Number(s.values[0]) : undefined;
          let tile = [...tiles.children].find((t) => t.dataset.key === s.key);
          if (!tile) { tile = el("div", { class: "value-tile", dataset: { key: s.key }, id: tileId }); tiles.append(tile); }
          clear(tile).append(el("div", { class: "tile-key mono", text: s.key }), el("div", { class: "tile-value", text: v === undefined ? "—" : fmtMetric(s.key, v) }),
            el("div", { class: "muted small", text: s.total ? `one point (step ${s.steps[0]})` : "no points" }));
          continue;
        }
        [...tiles.children].filter((t) => t.dataset.key === s.key).forEach((t) => t.remove());
        const xy = toXY(s, "step");
        // a system metric's chart in its unit: bytes as MB, rates as MB/s
        const unit = metricUnit(s.key);
        if (unit === "MB" || unit === "MB/s") xy.ys = Array.from(xy.ys, (y) => y / 1e6);
        const spec = { title: s.key, xLabel: "step", meta: `${unit ? `in ${unit} · ` : ""}${s.total.toLocaleString("en-US")} point${s.total === 1 ? "" : "s"}${s.total > xy.xs.length ? ", downsampled" : ""}`,
          series: [{ label: run.name || run.id.slice(0, 8), color: colorFor(0), ...xy }] };
        const c = charts.get(s.key);
        if (c) c.set(spec);
        else {
          const host = sys ? systemHost : metricsHost;
          charts.set(s.key, new LineChart(host, spec, { height: 200 }));
        }
      }
    }
  }
  ctx.onLeave(() => charts.forEach((c) => c.destroy()));

  renderHeader();
  renderOverview();
  renderEnvironment(envHost, run);
  await renderChildren(childrenHost, run);
  await loadCharts();
  if (!ctx.alive()) return;
  main.dataset.loaded = "1";
  ctx.live(run.status === "running");
  if (run.status === "running") {
    ctx.poll(async () => {
      run = await api.run(run.id);
      if (!ctx.alive()) return false;
      renderHeader();
      renderOverview();
      ctx.live(run.status === "running");
      await loadCharts();
      return run.status === "running";
    }, 2000);
  }
}

function fact(label, value) {
  return el("div", { class: "fact" }, el("dt", { text: label }), el("dd", null, value));
}

// What to say when env.git is absent: only "not a git checkout" when capture says so.
function gitEmpty(env) {
  if ((env.missing || []).includes("git")) return "git state not recorded (capture did not finish before the run ended)";
  if (env.errors && env.errors.git) return `git state could not be read: ${env.errors.git}`;
  if (env.code_snapshot) return "not a git checkout (code snapshot stored)";
  if (!env.command) return "not captured";
  return "not a git checkout";
}

function renderEnvironment(host, run) {
  const env = run.env || {};
  const git = env.git || {};
  const cmd = env.command || {};
  const py = env.python || {};
  const os = env.os || {};
  const hw = env.hardware || {};
  const seed = env.seed || {};

  const gitRows = {
    commit: git.commit, branch: git.branch, remote: git.remote, dirty: git.dirty,
    "patch sha256": git.diff_sha256, root: git.root,
    bundle: git.bundle ? (git.bundle.stored ? `${git.bundle.commits} unpushed commit(s), ${fmtBytes(git.bundle.size)} stored` : `not stored: ${git.bundle.why || "?"} (${fmtBytes(git.bundle.size)})`) : undefined,
  };
  const envSec = el("div", { class: "two-col" },
    section("Source",
      kvTable(gitRows, { empty: gitEmpty(env) }),
      cmd.argv ? el("div", { class: "sub" }, el("h3", { text: "Command" }), el("pre", { class: "code", text: (cmd.argv || []).map(shellQuote).join(" ") }),
        kvTable({ cwd: cmd.cwd, rel_cwd: cmd.rel_cwd, entry_point: cmd.entry_point, executable: cmd.executable })) : null),
    section("Platform",
      kvTable({ "python.version": py.version, "python.implementation": py.implementation, "python.executable": py.executable, "python.venv": py.venv,
        "os.system": os.system, "os.release": os.release, "os.libc": os.libc, "os.hostname": os.hostname, "os.container": os.container, "os.scheduler": os.scheduler })),
  );
  const gpus = hw.gpus || [];
  const hwSec = section("Hardware",
    kvTable({ cpu_model: hw.cpu_model, cpu_count: hw.cpu_count, cpu_physical: hw.cpu_physical, memory: hw.memory_bytes ? fmtBytes(hw.memory_bytes) : undefined, cuda: hw.cuda, cudnn: hw.cudnn }, { empty: "not captured" }),
    gpus.length ? el("table", { class: "grid compact" },
      el("thead", null, el("tr", null, ["GPU", "Memory", "Driver", "UUID"].map((h) => el("th", { text: h })))),
      el("tbody", null, gpus.map((g) => el("tr", null, el("td", { text: g.name }), el("td", { text: fmtBytes(g.memory_bytes) }), el("td", { text: g.driver }), el("td", { class: "mono", text: g.uuid }))))) : null);
  const seedSec = section("Seed",
    kvTable({ seed: seed.seed ?? run.seed, deterministic: seed.deterministic, seeded: (seed.seeded || []).join(", ") || undefined }, { empty: "no seed recorded" }));
  const pk = env.packages || {};
  const sources = env.package_sources || {};
  const pkgNames = Object.keys(pk).sort((a, b) => a.localeCompare(b));
  const pkgFilter = el("input", { type: "search", placeholder: `filter ${pkgNames.length} packages`, class: "small-input", "aria-label": "filter packages" });
  const pkgBody = el("tbody", null, pkgNames.map((n) => {
    const src = sources[n] || {};
    const srcText = src.editable ? `editable${src.url ? ` ${src.url}` : ""}` : src.vcs ? `${src.vcs} ${src.url || ""} ${src.commit || ""}` : src.url || "";
    return el("tr", { dataset: { name: n.toLowerCase() } }, el("td", { class: "mono", text: n }), el("td", { class: "mono", text: fmtValue(pk[n]) }), el("td", { class: "mono muted", text: srcText }));
  }));
  pkgFilter.addEventListener("input", () => {
    const s = pkgFilter.value.toLowerCase();
    pkgBody.querySelectorAll("tr").forEach((tr) => { tr.hidden = s && !tr.dataset.name.includes(s); });
  });
  const pkgSec = section("Packages", pkgNames.length ? el("div", null, pkgFilter,
    el("div", { class: "scroll-box" }, el("table", { class: "grid compact" }, el("thead", null, el("tr", null, el("th", { text: "Package" }), el("th", { text: "Version" }), el("th", { text: "Source" }))), pkgBody)))
    : el("p", { class: "muted", text: "not captured" }));
  const varsSec = section("Environment variables", kvTable(env.env_vars, { empty: "none captured" }));
  const errRows = { ...(env.errors || {}) };
  if ((env.missing || []).length) errRows["not recorded"] = `${env.missing.join(", ")} (capture did not finish before the run ended)`;
  const errs = Object.keys(errRows).length ? section("Capture problems", kvTable(errRows)) : null;

  // code: captured patch and snapshot
  const codeSec = section("Code");
  codeSec.id = "sec-code";
  const snap = env.code_snapshot || {};
  if (git.diff_sha256) {
    const diffHost = el("div", { class: "diff-host" }, el("p", { class: "muted", text: "loading patch…" }));
    codeSec.append(el("div", { class: "sub-head" }, el("h3", { text: "Uncommitted changes" }),
      el("a", { class: "button small", href: `/api/v1/runs/${encodeURIComponent(run.id)}/patch/download`, download: "", text: "Download .patch" })), diffHost);
    api.patch(run.id).then((p) => {
      clear(diffHost).append(renderDiff(p.text, p.truncated));
    }).catch((e) => { clear(diffHost).append(el("p", { class: "error-box", text: e.message })); });
  } else {
    codeSec.append(el("p", { class: "muted", text: git.commit ? "The working tree was clean: no uncommitted changes." : "No git patch captured." }));
  }
  if ((git.untracked || []).length) codeSec.append(el("h3", { text: "Untracked files" }), el("ul", { class: "mono small" }, git.untracked.map((f) => el("li", { text: f }))));
  if ((git.excluded || []).length) codeSec.append(el("h3", { text: "Left out of the code capture" }), el("ul", { class: "mono small" }, git.excluded.map((f) => el("li", { text: typeof f === "string" ? f : `${f.path}${f.reason ? ` (${f.reason}${f.size !== undefined ? `, ${fmtBytes(f.size)}` : ""})` : ""}` }))));
  if ((snap.files || []).length) {
    codeSec.append(el("h3", { text: `Code snapshot (${snap.files.length} files)` }),
      el("div", { class: "scroll-box" }, el("table", { class: "grid compact" },
        el("thead", null, el("tr", null, el("th", { text: "Path" }), el("th", { class: "num", text: "Size" }), el("th", { text: "sha256" }))),
        el("tbody", null, snap.files.map((f) => el("tr", null, el("td", { class: "mono", text: f.path }), el("td", { class: "num", text: fmtBytes(f.size) }), el("td", { class: "mono muted", text: String(f.sha256 || "").slice(0, 16) })))))));
  }

  // datasets and artifacts
  const artSec = el("div", { id: "sec-artifacts" });
  const datasets = run.datasets || [];
  artSec.append(section("Datasets", datasets.length ? el("table", { class: "grid compact" },
    el("thead", null, el("tr", null, ["Name", "Path", "Size", "content sha256"].map((h) => el("th", { text: h })))),
    el("tbody", null, datasets.map((d) => el("tr", null, el("td", { text: d.name }), el("td", { class: "mono", text: d.path || d.uri || (d.kind ? `${d.kind} in memory ${JSON.stringify(d.shape ?? "")}` : "") }),
      el("td", { class: "num", text: fmtBytes(d.size) }), el("td", { class: "mono", title: d.sha256 || "", text: String(d.sha256 || "").slice(0, 16) })))))
    : el("p", { class: "muted", text: "no datasets logged" })));
  const arts = run.artifacts || [];
  artSec.append(section("Artifacts", arts.length ? el("table", { class: "grid compact artifacts" },
    el("thead", null, el("tr", null, ["Name", "Kind", "Size", "Digest", ""].map((h) => el("th", { text: h })))),
    el("tbody", null, arts.map((a) => el("tr", null,
      el("td", { class: "mono", text: a.uri || a.name }), el("td", { text: a.kind || "" }), el("td", { class: "num", text: fmtBytes(a.size) }),
      artifactShaCell(a),
      el("td", null, artifactLink(run, a))))))
    : el("p", { class: "muted", text: "no artifacts logged" })));

  // lineage and reproduction (filled by other parts of labledger when present)
  const lin = el("div", { id: "sec-lineage" });
  const lineage = run.lineage || {};
  const used = run.used_artifacts || lineage.inputs || [];
  const lineageItems = [];
  if (run.parent_run_id) lineageItems.push(el("p", null, "Parent run: ", el("a", { href: `#/run/${encodeURIComponent(run.parent_run_id)}`, class: "mono", text: run.parent_run_id })));
  if (used.length) {
    lineageItems.push(el("h3", { text: "Used artifacts (inputs)" }), el("ul", null, used.map((u) => el("li", null, typeof u === "string" ? el("span", { class: "mono", text: u }) : artifactRefNode(u),
      typeof u === "object" && u.sha256 ? el("span", { class: "mono muted", text: `  sha256 ${String(u.sha256).slice(0, 16)}…` }) : null,
      typeof u === "object" && (u.files || []).length === 1 ? el("span", null, " ", artifactLink(run, u)) : null))));
  }
  const outputs = lineage.outputs || [];
  if (outputs.length) lineageItems.push(el("h3", { text: "Consumers" }), el("ul", null, outputs.map((u) => el("li", null, typeof u === "string" ? el("span", { class: "mono", text: u }) : artifactRefNode(u)))));
  for (const [k, v] of Object.entries(lineage)) if (!["inputs", "outputs"].includes(k)) lineageItems.push(el("h3", { text: k }), kvTable(typeof v === "object" ? v : { [k]: v }));
  lin.append(section("Lineage", lineageItems.length ? lineageItems : el("p", { class: "muted", text: "no parent run or input artifacts recorded" })));

  const rep = el("div", { id: "sec-repro" });
  const reproHost = el("div", null, el("p", { class: "muted", text: "loading…" }));
  rep.append(section("Reproduction", reproHost));
  (run.reproAnswer || api.repro(run.id)).then((r) => clear(reproHost).append(renderRepro(run, r)))
    .catch((e) => clear(reproHost).append(el("p", { class: "error-box", text: e.message })));

  add(host, envSec, el("div", { class: "two-col" }, hwSec, seedSec), pkgSec, varsSec, errs, codeSec, artSec, lin, rep);
}

function artifactRefNode(u) {
  const label = u.uri || (u.name ? `${u.name}${u.version !== undefined ? `:v${u.version}` : ""}` : u.sha256 || JSON.stringify(u));
  const runId = u.run_id || u.producer_run_id;
  if (runId) return el("span", null, el("span", { class: "mono", text: label }), " produced by run ", el("a", { href: `#/run/${encodeURIComponent(runId)}`, class: "mono", text: String(runId).slice(0, 8) }));
  return el("span", null, el("span", { class: "mono", text: label }),
    runId ? el("span", null, " from run ", el("a", { href: `#/run/${encodeURIComponent(runId)}`, class: "mono", text: String(runId).slice(0, 8) })) : null);
}

// A single file shows the file's own sha256 (what `sha256sum` prints); a directory its
// manifest digest (docs/artifacts.md).
// Both digests, each labelled: the version digest (what `labledger artifacts ls` shows)
// and, for a single file, the file's own sha256 (what `sha256sum` prints).
function artifactShaCell(a) {
  const files = a.files || [];
  const line = (label, sha) => el("div", { class: "digest" }, el("span", { class: "muted small", text: `${label} ` }),
    el("span", { class: "mono", title: sha || "", text: String(sha || "").slice(0, 16) }));
  return el("td", { class: "sha" }, line("version digest", a.sha256),
    files.length === 1 ? line("file sha256", files[0].sha256) : null);
}

// A table cell for a value that may not have been recorded: "—", marked absent.
function absentCell(v, cls = "", fmt = fmtValue) {
  if (v === undefined || v === null) return el("td", { class: `${cls} absent`, title: "not recorded", text: "—" });
  return el("td", { class: cls, text: fmt(v) });
}

function artifactFileHref(run, a, path) {
  const base = `/api/v1/runs/${encodeURIComponent(run.id)}/artifacts/${encodeURIComponent(a.id)}/file`;
  return path === undefined ? base : `${base}?path=${encodeURIComponent(path)}`;
}

function artifactLink(run, a) {
  const files = a.files || [];
  if (a.id === undefined || a.id === null || !files.length) return el("span", { class: "muted", text: "" });
  if (files.length === 1) return el("a", { href: artifactFileHref(run, a), download: "", class: "button small", text: "Download" });
  return el("details", { class: "files" }, el("summary", { text: `${files.length} files` }),
    el("ul", { class: "mono small" }, files.slice(0, 500).map((f) => el("li", null,
      el("a", { href: artifactFileHref(run, a, f.path), download: "", text: f.path }), el("span", { class: "muted", text: ` ${fmtBytes(f.size)}` })))),
    files.length > 500 ? el("p", { class: "muted", text: `… and ${files.length - 500} more (labledger artifacts get)` }) : null);
}

function runLink(id) {
  return el("a", { href: `#/run/${encodeURIComponent(id)}`, class: "mono", text: String(id).slice(0, 8) });
}

// The `repro` field: {verdict, role, reproduction_of, verdicts: [{original_run_id, repro_run_id, verdict, reason, created_at, ...}]}
function renderRepro(run, repro) {
  const verdicts = (repro && repro.verdicts) || [];
  if (!verdicts.length) return el("p", { class: "muted", text: "Not reproduced yet: labledger repro RUN re-runs it and records a verdict here." });
  return el("table", { class: "grid compact repro" },
    el("thead", null, el("tr", null, ["When", "Verdict", "", "Reason"].map((h) => el("th", { text: h })))),
    el("tbody", null, verdicts.map((v) => el("tr", null,
      el("td", { text: fmtTime(v.created_at) }),
      el("td", null, verdictBadge(v.verdict)),
      el("td", null, v.original_run_id === run.id
        ? (v.repro_run_id ? el("span", null, "re-run as ", runLink(v.repro_run_id)) : el("span", { class: "muted", text: "nothing was run" }))
        : el("span", null, "reproduces ", runLink(v.original_run_id))),
      el("td", { class: "small", text: v.reason || "" })))));
}

function shellQuote(s) {
  s = String(s);
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

// A unified diff, one element per line, classified by its first character.
export function renderDiff(text, truncated) {
  const lines = text.split("\n");
  const shown = lines.slice(0, MAX_DIFF_LINES);
  const pre = el("pre", { class: "diff" });
  const frag = document.createDocumentFragment();
  for (const line of shown) {
    let cls = "ctx";
    if (line.startsWith("diff --git") || line.startsWith("index ") || line.startsWith("--- ") || line.startsWith("+++ ")) cls = "file";
    else if (line.startsWith("@@")) cls = "hunk";
    else if (line.startsWith("+")) cls = "add";
    else if (line.startsWith("-")) cls = "del";
    const span = document.createElement("span");
    span.className = `dl ${cls}`;
    span.textContent = `${line}\n`;
    frag.append(span);
  }
  pre.append(frag);
  const note = truncated || lines.length > MAX_DIFF_LINES ? el("p", { class: "muted", text: "The patch is long: download it to see all of it." }) : null;
  return el("div", null, note, pre);
}

export { ApiError };
