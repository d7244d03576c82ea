// Projects list.
import { el, fmtAgo, fmtCount, fmtTime } from "./util.js";

const plural = (n, word) => `${fmtCount(n)} ${word}${Number(n) === 1 ? "" : "s"}`;
import { api } from "./api.js";

export async function renderProjects(main, ctx) {
  ctx.crumbs([{ label: "Projects" }]);
  const { projects } = await api.projects();
  if (!ctx.alive()) return;
  const total = projects.reduce((a, p) => a + p.runs, 0);
  main.append(
    el("div", { class: "page-head" },
      el("h1", { text: "Projects" }),
      el("span", { class: "muted", text: `${plural(projects.length, "project")} · ${plural(total, "run")}` }),
      el("span", { class: "spacer" }),
      el("a", { class: "button", href: "#/runs", text: "All runs" })),
  );
  if (!projects.length) {
    main.append(el("div", { class: "card empty" },
      el("h2", { text: "No runs yet" }),
      el("p", { text: "Start a run from Python and it appears here:" }),
      el("pre", { class: "code", text: 'import labledger\n\nwith labledger.init("my-project", config={"lr": 0.01}) as run:\n    run.log({"loss": 0.5})' })));
    main.dataset.loaded = "1";
    return;
  }
  const body = el("tbody");
  for (const p of projects) {
    const href = `#/p/${encodeURIComponent(p.project)}`;
    body.append(el("tr", { class: "project-row" },
      el("td", null, el("a", { class: "project-link", href, text: p.project })),
      el("td", { class: "num", text: fmtCount(p.runs) }),
      el("td", { title: fmtTime(p.last_run_at), text: fmtAgo(p.last_run_at) }),
      el("td", { class: "actions" },
        el("a", { href, text: "Runs" }),
        el("a", { href: `${href}/analysis`, text: "Analysis" }))));
  }
  main.append(el("div", { class: "card flush" },
    el("table", { class: "grid projects" },
      el("thead", null, el("tr", null, el("th", { text: "Project" }), el("th", { class: "num", text: "Runs" }),
        el("th", { text: "Last run" }), el("th", { text: "" }))),
      body)));
  main.dataset.loaded = "1";
}
