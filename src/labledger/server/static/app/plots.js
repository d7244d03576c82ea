// Parallel coordinates, scatter and bar plots drawn on a <canvas> (text via fillText,
// so run names and config values never become markup).
import { el, fmtValue, isNum, viridis } from "./util.js";

const FONT = "11px system-ui, -apple-system, 'Segoe UI', sans-serif";
const INK = "#2b3440", MUTED = "#6b7480", GRID = "#e3e7ec";

function setupCanvas(canvas, width, height) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.font = FONT;
  return ctx;
}

function fmtTick(v) {
  return isNum(v) && !Number.isInteger(v) ? fmtValue(Number(v.toPrecision(3))) : fmtValue(v);
}

function clip(text, n = 22) {
  const s = String(text);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

// A scale for one axis over values: numeric (linear, or log when positive and spanning
// two decades or more) or categorical (sorted distinct values evenly spaced).
export function makeScale(values) {
  const present = values.filter((v) => v !== undefined && v !== null && !(typeof v === "number" && !Number.isFinite(v)));
  if (present.length && present.every((v) => typeof v === "number")) {
    let lo = Math.min(...present), hi = Math.max(...present);
    const log = lo > 0 && hi / lo >= 100;
    const f = log ? Math.log10 : (x) => x;
    let a = f(lo), b = f(hi);
    if (a === b) { a -= 0.5; b += 0.5; }
    return {
      kind: log ? "log" : "linear",
      pos: (v) => (isNum(v) ? (f(v) - a) / (b - a) : NaN),
      ticks: log
        ? [lo, hi].map((v) => ({ t: (f(v) - a) / (b - a), label: fmtTick(v) }))
        : lo === hi ? [{ t: 0.5, label: fmtTick(lo) }] : [0, 0.5, 1].map((t) => ({ t, label: fmtTick(lo + (hi - lo) * t) })),
      lo, hi,
    };
  }
  const cats = [...new Set(present.map((v) => fmtValue(v)))].sort();
  const idx = new Map(cats.map((c, i) => [c, i]));
  const span = Math.max(1, cats.length - 1);
  return {
    kind: "category",
    pos: (v) => (v === undefined || v === null ? NaN : cats.length === 1 ? 0.5 : idx.get(fmtValue(v)) / span),
    ticks: cats.slice(0, 12).map((c) => ({ t: cats.length === 1 ? 0.5 : idx.get(c) / span, label: c })),
  };
}

// Text over lines stays legible: a white halo under the glyphs.
function haloText(ctx, text, x, y) {
  ctx.save();
  ctx.strokeStyle = "rgba(255,255,255,0.92)";
  ctx.lineWidth = 4;
  ctx.lineJoin = "round";
  ctx.strokeText(text, x, y);
  ctx.restore();
  ctx.fillText(text, x, y);
}

// rows: [{label, color?, values: {axisKey: value}}]; axes: [key]; colorAxis: key whose value colours lines.
export function drawParcoords(canvas, rows, axes, { width, height = 320, colorAxis = null, label = (k) => k } = {}) {
  const ctx = setupCanvas(canvas, width, height);
  ctx.clearRect(0, 0, width, height);
  const top = 34, bottom = height - 22, left = 60, right = width - 60;
  if (axes.length < 2) {
    ctx.fillStyle = MUTED;
    ctx.fillText("choose at least two axes", left, top + 20);
    return { drawn: 0 };
  }
  const scales = axes.map((k) => makeScale(rows.map((r) => r.values[k])));
  const xs = axes.map((_, i) => left + ((right - left) * i) / (axes.length - 1));
  const cIdx = colorAxis ? axes.indexOf(colorAxis) : -1;
  let drawn = 0;
  const linked = axes.map(() => 0); // lines that reach each axis (a point joined to a neighbour)
  ctx.lineWidth = rows.length > 200 ? 1 : 1.6;
  ctx.globalAlpha = rows.length > 500 ? 0.35 : rows.length > 50 ? 0.6 : 0.9;
  for (const r of rows) {
    const ts = axes.map((k, i) => scales[i].pos(r.values[k]));
    ctx.strokeStyle = r.color || (cIdx >= 0 ? viridis(ts[cIdx]) : "#4e79a7");
    ctx.beginPath();
    let pen = false;
    ts.forEach((t, i) => {
      if (!Number.isFinite(t)) { pen = false; return; }
      if (Number.isFinite(ts[i - 1]) || Number.isFinite(ts[i + 1])) linked[i]++;
      const y = bottom - t * (bottom - top);
      if (pen) ctx.lineTo(xs[i], y); else ctx.moveTo(xs[i], y);
      pen = true;
    });
    ctx.stroke();
    drawn++;
  }
  ctx.globalAlpha = 1;
  axes.forEach((k, i) => {
    const x = xs[i];
    ctx.strokeStyle = "#8a94a0";
    ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
    ctx.fillStyle = INK;
    ctx.textAlign = "center";
    ctx.font = `600 ${FONT}`;
    ctx.fillText(clip(label(k), 26), x, top - 18);
    ctx.font = FONT;
    ctx.fillStyle = MUTED;
    for (const tk of scales[i].ticks) {
      const y = bottom - tk.t * (bottom - top);
      ctx.beginPath(); ctx.moveTo(x - 3, y); ctx.lineTo(x + 3, y); ctx.stroke();
      ctx.textAlign = i === axes.length - 1 ? "left" : "right";
      haloText(ctx, clip(tk.label, 14), i === axes.length - 1 ? x + 6 : x - 6, y + 4);
    }
    if (scales[i].kind === "log") { ctx.textAlign = "center"; ctx.fillText("log", x, bottom + 14); }
  });
  ctx.textAlign = "left";
  return { drawn, linked };
}

// points: [{x, y, label, color}] -> scatter with hover tooltip.
export function drawScatter(canvas, points, { width, height = 300, xLabel = "", yLabel = "", tooltip = null } = {}) {
  const ctx = setupCanvas(canvas, width, height);
  ctx.clearRect(0, 0, width, height);
  const left = 64, right = width - 16, top = 14, bottom = height - 40;
  const xs0 = makeScale(points.map((p) => p.x));
  const ys0 = makeScale(points.map((p) => p.y));
  // keep points off the frame: the data range fills the middle 90% of each axis
  const inset = (sc) => ({ ...sc, pos: (v) => 0.05 + 0.9 * sc.pos(v), ticks: sc.ticks.map((tk) => ({ ...tk, t: 0.05 + 0.9 * tk.t })) });
  const xScale = inset(xs0), yScale = inset(ys0);
  ctx.strokeStyle = GRID;
  ctx.fillStyle = MUTED;
  ctx.lineWidth = 1;
  for (const tk of xScale.ticks) {
    const x = left + tk.t * (right - left);
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
    ctx.textAlign = "center"; ctx.fillText(clip(tk.label, 14), x, bottom + 14);
  }
  for (const tk of yScale.ticks) {
    const y = bottom - tk.t * (bottom - top);
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(right, y); ctx.stroke();
    ctx.textAlign = "right"; ctx.fillText(clip(tk.label, 10), left - 6, y + 4);
  }
  ctx.strokeStyle = "#8a94a0";
  ctx.strokeRect(left, top, right - left, bottom - top);
  ctx.fillStyle = INK;
  ctx.textAlign = "center";
  ctx.fillText(clip(xLabel + (xScale.kind === "log" ? " (log)" : ""), 60), (left + right) / 2, height - 8);
  ctx.save();
  ctx.translate(14, (top + bottom) / 2); ctx.rotate(-Math.PI / 2);
  ctx.fillText(clip(yLabel + (yScale.kind === "log" ? " (log)" : ""), 40), 0, 0);
  ctx.restore();
  const placed = [];
  for (const p of points) {
    const tx = xScale.pos(p.x), ty = yScale.pos(p.y);
    if (!Number.isFinite(tx) || !Number.isFinite(ty)) continue;
    const px = left + tx * (right - left), py = bottom - ty * (bottom - top);
    ctx.fillStyle = p.color || "#4e79a7";
    ctx.globalAlpha = points.length > 300 ? 0.6 : 0.9;
    ctx.beginPath(); ctx.arc(px, py, points.length > 300 ? 2.5 : 4, 0, 2 * Math.PI); ctx.fill();
    placed.push({ px, py, p });
  }
  ctx.globalAlpha = 1;
  canvas.dataset.frame = JSON.stringify({ left, right, top, bottom });
  canvas.dataset.extent = JSON.stringify(placed.length ? {
    left: Math.min(...placed.map((q) => q.px)), right: Math.max(...placed.map((q) => q.px)),
    top: Math.min(...placed.map((q) => q.py)), bottom: Math.max(...placed.map((q) => q.py)) } : null);
  if (tooltip) {
    canvas.onmousemove = (ev) => {
      const r = canvas.getBoundingClientRect();
      const mx = ev.clientX - r.left, my = ev.clientY - r.top;
      let best = null, bd = 100;
      for (const q of placed) {
        const d = (q.px - mx) ** 2 + (q.py - my) ** 2;
        if (d < bd) { bd = d; best = q; }
      }
      if (!best) { tooltip.hidden = true; return; }
      tooltip.hidden = false;
      tooltip.textContent = `${best.p.label}\n${xLabel}: ${fmtValue(best.p.x)}\n${yLabel}: ${fmtValue(best.p.y)}`;
      tooltip.style.left = `${best.px + 12}px`;
      tooltip.style.top = `${best.py - 8}px`;
    };
    canvas.onmouseleave = () => { tooltip.hidden = true; };
  }
  return { drawn: placed.length };
}

// Horizontal bars from DOM elements: items [{label, value, detail, extra}]. ``extra`` (a
// correlation in -1..1) is drawn as a thin second bar under the first, so a key the model
// gives no weight still shows how its values go with the metric; the detail text gets a
// line of its own under the bars (never cut off).
export function barList(items, { format = (v) => fmtValue(v) } = {}) {
  const max = Math.max(1e-12, ...items.map((i) => (isNum(i.value) ? Math.abs(i.value) : 0)));
  return el("div", { class: "bars" }, items.map((it) => {
    const bar = el("span", { class: "bar-fill" });
    bar.style.width = `${Math.max(0.5, (100 * Math.abs(isNum(it.value) ? it.value : 0)) / max)}%`;
    const rho = isNum(it.extra) ? el("span", { class: `bar-rho ${it.extra < 0 ? "neg" : "pos"}`, title: `Spearman ${fmtValue(it.extra)}` }) : null;
    if (rho) rho.style.width = `${Math.max(0.5, 100 * Math.min(1, Math.abs(it.extra)))}%`;
    return el("div", { class: "bar-row", title: it.detail || "" },
      el("span", { class: "bar-label mono", text: it.label }),
      el("span", { class: "bar-track" }, el("span", { class: "imp-track" }, bar), rho ? el("span", { class: "rho-track" }, rho) : null),
      el("span", { class: "bar-value mono", text: format(it.value) }),
      el("span", { class: "bar-detail muted small", text: it.detail || "" }));
  }));
}
