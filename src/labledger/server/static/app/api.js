// The JSON API, with the server's error shape {code, message, details} turned into ApiError.
import { decodeFloats } from "./util.js";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export async function getJSON(path, params, { signal } = {}) {
  const resp = await fetch(`/api/v1${path}${query(params)}`, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
    signal,
  });
  if (resp.status === 401) {
    location.assign("/login");
    throw new ApiError(401, "unauthorized", "sign in to see this page");
  }
  let body = null;
  try {
    body = await resp.json();
  } catch (e) {
    body = null;
  }
  if (!resp.ok) {
    const b = body || {};
    throw new ApiError(resp.status, b.code || "error", b.message || `HTTP ${resp.status}`, b.details);
  }
  return body;
}

export async function postJSON(path, body) {
  const resp = await fetch(`/api/v1${path}`, {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  let out = null;
  try {
    out = await resp.json();
  } catch (e) {
    out = null;
  }
  if (!resp.ok) {
    const b = out || {};
    throw new ApiError(resp.status, b.code || "error", b.message || `HTTP ${resp.status}`, b.details);
  }
  return out;
}

const INCLUDE_REPRO = ["1", "true", "yes"].includes(new URLSearchParams(window.location.search).get("include_repro") || "");

export const api = {
  edit: (ref, body) => postJSON(`/runs/${encodeURIComponent(ref)}/edits`, body),
  projects: () => getJSON("/projects"),
  // reproductions (job_type "repro") stay out of the runs tables, the leaderboard and
  // importance unless the page is opened with ?include_repro=1
  runs: (p, opts) => getJSON("/runs", { include_repro: INCLUDE_REPRO, ...p }, opts).then((b) => ({ ...b, runs: decodeFloats(b.runs) })),
  run: (ref) => getJSON(`/runs/${encodeURIComponent(ref)}`).then(decodeFloats),
  compare: (refs) => getJSON("/compare", { run: refs }).then((b) => decodeFloats(b.runs)),
  keys: (p) => getJSON("/keys", p),
  replicates: (p) => getJSON("/replicates", p),
  series: (runs, keys, maxPoints) => getJSON("/series", { run: runs, key: keys, max_points: maxPoints }),
  repro: (ref) => getJSON(`/runs/${encodeURIComponent(ref)}/repro`).then(decodeFloats),
  patch: (ref) => getJSON(`/runs/${encodeURIComponent(ref)}/patch`),
  mediaKeys: (ref) => getJSON(`/runs/${encodeURIComponent(ref)}/media/keys`).then((b) => b.keys),
  mediaSteps: (ref, key) => getJSON(`/runs/${encodeURIComponent(ref)}/media/steps`, { key }).then((b) => b.steps),
  media: (ref, p) => getJSON(`/runs/${encodeURIComponent(ref)}/media`, p).then((b) => b.items),
  importance: (p) => getJSON("/importance", { include_repro: INCLUDE_REPRO, ...p }).then(decodeFloats),
  // the model registry (docs/ui.md "Model registry")
  models: () => getJSON("/models"),
  model: (name) => getJSON(`/models/${encodeURIComponent(name)}`),
  modelVersions: (name) => getJSON(`/models/${encodeURIComponent(name)}/versions`).then(decodeFloats),
  aliasHistory: (name) => getJSON(`/models/${encodeURIComponent(name)}/alias-history`),
  versionsOfRun: (runId) => getJSON("/model-versions", { run_id: runId }),
  leaderboard: (p) => getJSON("/leaderboard", { include_repro: INCLUDE_REPRO, ...p }).then(decodeFloats),
};

export function seriesValues(values) {
  // Non-finite values travel as the strings "NaN" / "Infinity" / "-Infinity".
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = typeof values[i] === "number" ? values[i] : Number(values[i]);
  return out;
}
