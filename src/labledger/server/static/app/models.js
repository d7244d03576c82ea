// The model registry: #/models lists the registered models the caller may read;
// #/models/NAME shows one model's versions, each with its source run (its headline
// number, sealed record and amendments: the number the model stands behind, one click
// away), its content-addressed artifact (digest, download) and who registered it, and
// the history of its aliases (each move an edit event in the audit chain, by its actor).
import { el, fmtAgo, fmtBytes, fmtMetric, fmtTime, shortAuthor, statusBadge, amendedMarker, choosePrimary, rememberedPrimary } from "./util.js";
import { api } from "./api.js";

const modelHref = (name) => `#/models/${encodeURIComponent(name)}`;
const runHref = (id) => `#/run/${encodeURIComponent(id)}`;

function aliasBadge(alias, version) {
  return el("span", { class: "badge model-alias", dataset: { alias }, title: version ? `@${alias} → version ${version}` : `@${alias}` },
    `@${alias}`, version ? el("span", { class: "alias-to", text: ` v${version}` }) : null);
}

function authorNode(author) {
  return author ? el("span", { class: "model-author", title: author, text: shortAuthor(author) }) : el("span", { class: "muted", text: "—" });
}

export async function renderModels(main, ctx) {
  ctx.crumbs([{ label: "Projects", href: "#/" }, { label: "Models" }]);
  const models = await api.models();
  if (!ctx.alive()) return;
  main.className = "models-page";
  main.append(el("div", { class: "page-head" },
    el("h1", { text: "Model registry" }),
    el("span", { class: "muted", text: `${models.length} model${models.length === 1 ? "" : "s"}` })));
  if (!models.length) {
    main.append(el("div", { class: "card empty" },
      el("h2", { text: "No registered models yet" }),
      el("p", { text: "Register a finished run's artifact as a model version:" }),
      el("pre", { class: "code", text: "labledger models register RUN ARTIFACT NAME\nlabledger models alias NAME champion 1" })));
    main.dataset.loaded = "1";
    return;
  }
  const body = el("tbody");
  for (const m of models) {
    const latest = m.latest_version;
    const aliases = Object.entries(m.aliases || {}).sort(([a], [b]) => a.localeCompare(b));
    body.append(el("tr", { class: "model-row", dataset: { model: m.name } },
      el("td", null, el("a", { class: "model-link", href: modelHref(m.name), text: m.name })),
      el("td", { class: "model-latest" }, latest
        ? el("span", null, el("a", { href: modelHref(m.name), text: `v${latest.version}` }),
          latest.run_id ? el("span", null, " · run ", el("a", { class: "mono", href: runHref(latest.run_id), text: String(latest.run_id).slice(0, 8) })) : null)
        : el("span", { class: "muted", text: "no versions" })),
      el("td", { class: "model-aliases" }, aliases.length ? aliases.map(([a, v]) => aliasBadge(a, v)) : el("span", { class: "muted", text: "—" })),
      el("td", null, m.project ? el("a", { href: `#/p/${encodeURIComponent(m.project)}`, text: m.project }) : el("span", { class: "muted", text: "—" })),
      el("td", { class: "model-description", text: m.description || "" }),
      el("td", { title: fmtTime(m.updated_at), text: fmtAgo(m.updated_at) })));
  }
  main.append(el("div", { class: "card flush" },
    el("table", { class: "grid models" },
      el("thead", null, el("tr", null, ["Model", "Latest version", "Aliases", "Project", "Description", "Updated"].map((h) => el("th", { text: h })))),
      body)));
  main.dataset.loaded = "1";
}

export async function renderModel(main, name, ctx) {
  ctx.crumbs([{ label: "Projects", href: "#/" }, { label: "Models", href: "#/models" }, { label: name }]);
  const [model, versions, history] = await Promise.all([api.model(name), api.modelVersions(name), api.aliasHistory(name)]);
  if (!ctx.alive()) return;
  main.className = "model-page";
  const aliases = Object.entries(model.aliases || {}).sort(([a], [b]) => a.localeCompare(b));
  main.append(el("div", { class: "card model-header" },
    el("div", { class: "run-title" }, el("h1", { class: "model-name", text: model.name }),
      aliases.map(([a, v]) => aliasBadge(a, v))),
    el("dl", { class: "facts" },
      fact("Project", model.project ? el("a", { href: `#/p/${encodeURIComponent(model.project)}`, text: model.project }) : "—"),
      fact("Versions", String(versions.length)),
      fact("Created by", authorNode(model.author)),
      fact("Created", fmtTime(model.created_at)),
      fact("Updated", fmtTime(model.updated_at)),
      fact("Load", el("span", { class: "mono", text: aliases.length ? `models:/${model.name}@${aliases[0][0]}` : `models:/${model.name}/${versions.length || 1}` }))),
    model.description ? el("p", { class: "notes model-description", text: model.description }) : null));

  const rows = [...versions].reverse().map((v) => versionRow(v));
  main.append(el("section", { class: "card flush model-versions-card" },
    el("h2", { class: "card-title", text: "Versions" }),
    versions.length
      ? el("div", { class: "scroll-x" }, el("table", { class: "grid model-versions" },
        el("thead", null, el("tr", null, ["Version", "Source run", "Headline", "Artifact", "Digest", "", "Registered by", "Created"].map((h) => el("th", { text: h })))),
        el("tbody", null, rows)))
      : el("p", { class: "muted pad", text: "No versions yet." })));

  main.append(el("section", { class: "card alias-history-card" },
    el("h2", { text: "Alias history" }),
    el("p", { class: "muted small", text: "Each move is an edit event of the run the alias points at, recorded as the user who moved it and chained into the project's audit log (labledger audit verify)." }),
    history.length
      ? el("table", { class: "grid compact alias-history" },
        el("thead", null, el("tr", null, ["When", "Alias", "Move", "By", "Run", "Audit chain"].map((h) => el("th", { text: h })))),
        el("tbody", null, [...history].reverse().map((e) => el("tr", { class: "alias-move", dataset: { alias: e.alias } },
          el("td", { text: fmtTime(e.at) }),
          el("td", null, aliasBadge(e.alias)),
          el("td", { class: "mono move", text: `${e.old_version === null || e.old_version === undefined ? "—" : `v${e.old_version}`} → ${e.new_version === null || e.new_version === undefined ? "removed" : `v${e.new_version}`}` }),
          el("td", null, authorNode(e.author)),
          el("td", null, e.run_id ? el("a", { class: "mono", href: runHref(e.run_id), text: String(e.run_id).slice(0, 8) }) : el("span", { class: "muted", title: "a run in a project you cannot read", text: "—" })),
          el("td", { class: "small" }, e.audit_seq === null || e.audit_seq === undefined
            ? el("span", { class: "muted", title: "the run is not in the audit chain (it was not sealed)", text: "not chained" })
            : el("span", { class: "mono chained", title: e.entry_sha256 ? `entry sha256 ${e.entry_sha256}` : "", text: `#${e.audit_seq} ${String(e.entry_sha256 || "").slice(0, 12)}` }))))))
      : el("p", { class: "muted", text: "No alias has been set yet." })));
  main.dataset.loaded = "1";
}

function fact(label, value) {
  return el("div", { class: "fact" }, el("dt", { text: label }), el("dd", null, value));
}

// The run's headline number: the metric its project's tables lead with.
function headline(run) {
  const summary = run.summary || {};
  const key = choosePrimary(Object.keys(summary), [run], rememberedPrimary(run.project));
  if (!key) return el("span", { class: "muted", text: "no summary metric" });
  return el("span", { class: "headline" }, el("span", { class: "mono muted small", text: `${key} ` }),
    el("strong", { class: "headline-value", text: fmtMetric(key, summary[key]) }), amendedMarker(run, key));
}

function artifactHref(v, path) {
  const base = `/api/v1/runs/${encodeURIComponent(v.run_id)}/artifacts/${encodeURIComponent(v.artifact_version_id)}/file`;
  return path === undefined ? base : `${base}?path=${encodeURIComponent(path)}`;
}

function downloadCell(v) {
  const a = v.artifact;
  const files = (a && a.files) || [];
  if (!files.length) return el("td", { class: "muted", text: "" });
  if (files.length === 1) return el("td", null, el("a", { class: "button small model-download", href: artifactHref(v), download: "", title: files[0].path, text: "Download" }));
  return el("td", null, el("details", { class: "files" }, el("summary", { text: `${a.file_count} files` }),
    el("ul", { class: "mono small" }, files.map((f) => el("li", null, el("a", { href: artifactHref(v, f.path), download: "", text: f.path }),
      el("span", { class: "muted", text: ` ${fmtBytes(f.size)}` })))),
    a.file_count > files.length ? el("p", { class: "muted small", text: `… and ${a.file_count - files.length} more (labledger artifacts get)` }) : null));
}

function versionRow(v) {
  const run = v.run;
  const a = v.artifact;
  const files = (a && a.files) || [];
  const runCell = run
    ? el("td", { class: "model-run" },
      el("a", { class: "model-run-link", href: runHref(run.id), text: run.name || run.id.slice(0, 8) }), " ",
      el("span", { class: "mono muted small", text: run.id.slice(0, 8) }), " ", statusBadge(run.status),
      run.sealed ? el("span", { class: "badge sealed", title: `sealed record sha256 ${run.record_sha256} (labledger audit verify)`, text: "sealed" }) : null)
    : el("td", { class: "muted", title: "the source run is in a project you cannot read", text: "—" });
  const digest = a
    ? el("td", { class: "sha" },
      el("div", { class: "digest" }, el("span", { class: "muted small", text: "version " }), el("span", { class: "mono", title: `sha256 ${a.sha256}`, text: String(a.sha256).slice(0, 16) })),
      files.length === 1 ? el("div", { class: "digest" }, el("span", { class: "muted small", text: "file " }), el("span", { class: "mono", title: `sha256 ${files[0].sha256}`, text: String(files[0].sha256).slice(0, 16) })) : null)
    : el("td", { class: "muted", text: "—" });
  return el("tr", { class: "model-version", dataset: { version: String(v.version) } },
    el("td", { class: "model-version-cell" }, el("strong", { text: `v${v.version}` }), " ", (v.aliases || []).map((x) => aliasBadge(x))),
    runCell,
    el("td", null, run ? headline(run) : el("span", { class: "muted", text: "—" })),
    el("td", { class: "model-artifact" }, a
      ? el("span", null, el("span", { class: "mono", text: `${a.name}:v${a.version}` }), " ", el("span", { class: "muted small", text: `${a.kind || ""} ${fmtBytes(a.size)}`.trim() }),
        files.length === 1 ? el("div", { class: "mono small muted artifact-path", text: files[0].path }) : null)
      : el("span", { class: "mono muted", text: String(v.artifact_version_id || "—").slice(0, 12) })),
    digest,
    downloadCell(v),
    el("td", null, authorNode(v.author)),
    el("td", { class: "model-created", text: fmtTime(v.created_at) }));
}
