// The dashboard shell: hash routes, breadcrumbs, polling for live runs, error display.
import { el, clear } from "./util.js";
import { ApiError } from "./api.js";
import { renderProjects } from "./projects.js";
import { renderRuns } from "./runs.js";
import { renderRun } from "./run.js";
import { renderCompare } from "./compare.js";
import { renderAnalysis } from "./analysis.js";
import { renderGroup } from "./group.js";
import { renderModels, renderModel } from "./models.js";

const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");
const liveBadge = document.getElementById("live");

const ROUTES = [
  [/^\/?$/, (m, q, ctx) => renderProjects(main, ctx)],
  [/^\/runs$/, (m, q, ctx) => renderRuns(main, null, q, ctx)],
  [/^\/p\/([^/]+)$/, (m, q, ctx) => renderRuns(main, decodeURIComponent(m[1]), q, ctx)],
  [/^\/p\/([^/]+)\/analysis$/, (m, q, ctx) => renderAnalysis(main, decodeURIComponent(m[1]), q, ctx)],
  [/^\/analysis$/, (m, q, ctx) => renderAnalysis(main, null, q, ctx)],
  [/^\/run\/([^/]+)$/, (m, q, ctx) => renderRun(main, decodeURIComponent(m[1]), q, ctx)],
  [/^\/group\/([^/]+)$/, (m, q, ctx) => renderGroup(main, decodeURIComponent(m[1]), q, ctx)],
  [/^\/compare$/, (m, q, ctx) => renderCompare(main, q, ctx)],
  [/^\/models$/, (m, q, ctx) => renderModels(main, ctx)],
  [/^\/models\/([^/]+)$/, (m, q, ctx) => renderModel(main, decodeURIComponent(m[1]), ctx)],
  // MLflow's printed "View run at .../#/experiments/X/runs/Y" and "View experiment" links
  [/^\/experiments\/[^/]+\/runs\/([^/]+)/, (m) => location.replace(`#/run/${m[1]}`)],
  [/^\/experiments\/([^/]+)$/, (m) => experimentPage(m[1])],
];

async function experimentPage(id) {
  const r = await fetch(`/api/2.0/mlflow/experiments/get?experiment_id=${encodeURIComponent(id)}`, { credentials: "same-origin" });
  const name = r.ok ? (await r.json()).experiment?.name : null;
  location.replace(name ? `#/p/${encodeURIComponent(name)}` : "#/");
}

let generation = 0;
let timers = [];
let cleanups = [];

export function parseHash() {
  const h = location.hash.replace(/^#/, "") || "/";
  const i = h.indexOf("?");
  return { path: i < 0 ? h : h.slice(0, i), query: new URLSearchParams(i < 0 ? "" : h.slice(i + 1)) };
}

function makeContext(gen) {
  return {
    alive: () => gen === generation,
    crumbs(items) {
      clear(crumbs);
      items.forEach((it, i) => {
        if (i) crumbs.append(el("span", { class: "sep", text: "/" }));
        crumbs.append(it.href ? el("a", { href: it.href, text: it.label }) : el("span", { text: it.label }));
      });
      document.title = [...items.map((i) => i.label).reverse(), "labledger"].join(" · ");
    },
    // Call fn every ms while this page is shown; fn returns false to stop.
    poll(fn, ms) {
      let busy = false;
      const id = setInterval(async () => {
        if (gen !== generation || busy || document.hidden) return;
        busy = true;
        try {
          if ((await fn()) === false) clearInterval(id);
        } catch (e) {
          console.warn("refresh failed:", e.message);
        } finally {
          busy = false;
        }
      }, ms);
      timers.push(id);
    },
    live(on) { liveBadge.hidden = !on; },
    onLeave(fn) { cleanups.push(fn); },
    // Rewrite the route's query string without re-rendering (keeps back/forward meaningful).
    setQuery(params) {
      const { path } = parseHash();
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) {
        if (v === undefined || v === null || v === "" || (Array.isArray(v) && !v.length)) continue;
        q.set(k, Array.isArray(v) ? v.join(",") : String(v));
      }
      const s = q.toString();
      history.replaceState(null, "", `#${path}${s ? `?${s}` : ""}`);
    },
  };
}

export function showError(host, err) {
  const msg = err instanceof ApiError ? err.message : `Something went wrong: ${err.message || err}`;
  host.append(el("div", { class: "error-box", role: "alert" }, el("strong", { text: err.status === 404 ? "Not found. " : "Error. " }), msg));
}

async function route() {
  generation++;
  timers.forEach(clearInterval);
  timers = [];
  cleanups.forEach((f) => { try { f(); } catch (e) { /* page already gone */ } });
  cleanups = [];
  liveBadge.hidden = true;
  const gen = generation;
  const { path, query } = parseHash();
  clear(main);
  main.className = "";
  delete main.dataset.loaded;
  const ctx = makeContext(gen);
  for (const [re, fn] of ROUTES) {
    const m = path.match(re);
    if (m) {
      try {
        await fn(m, query, ctx);
      } catch (err) {
        if (gen === generation) showError(main, err);
        if (!(err instanceof ApiError)) console.error(err);
      }
      if (gen === generation) document.body.dataset.page = path.split("/")[1] || "projects";
      return;
    }
  }
  ctx.crumbs([{ label: "Not found" }]);
  main.append(el("div", { class: "error-box", text: "No such page." }), el("a", { href: "#/", text: "Back to projects" }));
}

window.addEventListener("hashchange", route);
route();
