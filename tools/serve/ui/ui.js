// latent serve's web page. Every result shown comes from the public KServe v2 infer endpoint
// (POST /v2/models/NAME/infer); /ui/api/ gives only what a run directory holds (examples, test
// codes, curve, config). No external files: this script, ui.css and the HTML are in the binary.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "latent-api-key";

// ---- HTTP with the API key (asked once, kept in sessionStorage) ----
let keyPrompt = null;

function askKey() {
  if (keyPrompt) return keyPrompt;
  keyPrompt = new Promise((resolve) => {
    const form = $("key-form");
    form.hidden = false;
    $("key-input").focus();
    form.addEventListener("submit", function onSubmit(ev) {
      ev.preventDefault();
      sessionStorage.setItem(KEY, $("key-input").value.trim());
      form.hidden = true;
      form.removeEventListener("submit", onSubmit);
      keyPrompt = null;
      resolve();
    });
  });
  return keyPrompt;
}

// Asks for the key up front when the server needs one and this tab has none (no 401 on the way).
async function checkKey() {
  const r = await fetch("/ui/auth.json");
  const { key_required } = await r.json();
  if (key_required && !sessionStorage.getItem(KEY)) await askKey();
}

async function http(path, options = {}) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const headers = Object.assign({}, options.headers || {});
    const key = sessionStorage.getItem(KEY);
    if (key) headers.Authorization = "Bearer " + key;
    const r = await fetch(path, Object.assign({}, options, { headers }));
    if (r.status === 401) {
      if (key) showMessage("The API key was refused; enter it again.");
      sessionStorage.removeItem(KEY);
      await askKey();
      hideMessage();
      continue;
    }
    return r;
  }
  throw new Error("no accepted API key");
}

async function getJson(path) {
  const r = await http(path);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || path + ": HTTP " + r.status);
  return body;
}

let requestId = 0;
// One infer call; returns {name: {shape, data}} of the outputs.
async function infer(model, inputs, outputs) {
  const body = { id: "ui-" + (++requestId), inputs };
  if (outputs) body.outputs = outputs.map((name) => ({ name }));
  const r = await http("/v2/models/" + encodeURIComponent(model) + "/infer", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const reply = await r.json();
  liveSoon();
  if (!r.ok) throw new Error(reply.error || "infer: HTTP " + r.status);
  const out = {};
  for (const o of reply.outputs) out[o.name] = o;
  return out;
}

function showMessage(text) { const m = $("message"); m.textContent = text; m.hidden = false; }
function hideMessage() { $("message").hidden = true; }
function fail(err) { showMessage(String(err && err.message ? err.message : err)); }

// ---- drawing helpers ----
function paintGray(canvas, values, scale) {  // values: pixel bytes (scale 1) or model units (1/scale)
  const w = canvas.width, h = canvas.height, ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const v = Math.max(0, Math.min(255, Math.round(values[i] / scale)));
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function heat(t) {  // 0..1 -> black, red, yellow, white
  t = Math.max(0, Math.min(1, t));
  return [Math.min(255, 3 * 255 * t), Math.max(0, Math.min(255, 3 * 255 * t - 255)), Math.max(0, 3 * 255 * t - 510)];
}

function paintHeat(canvas, values, top) {
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(canvas.width, canvas.height);
  for (let i = 0; i < values.length; i++) {
    const [r, g, b] = heat(top > 0 ? values[i] / top : 0);
    img.data[4 * i] = r; img.data[4 * i + 1] = g; img.data[4 * i + 2] = b; img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

// Six significant digits without trailing zeros (0.28, not 0.280000).
function fmt(v) { return v === null || v === undefined ? "–" : String(Number(Number(v).toPrecision(6))); }

function verdict(prefix, score, anomaly, threshold) {
  const s = $(prefix + "score");
  s.textContent = fmt(score);
  s.dataset.value = String(score);
  $(prefix + "threshold-text").textContent = threshold === null ? "(the run stores no threshold)" : "threshold " + fmt(threshold) + ":";
  const v = $(prefix + "verdict-text");
  v.textContent = threshold === null ? "" : anomaly ? "anomaly" : "normal";
  v.className = anomaly ? "anomaly" : "normal";
}

// ---- state the tests read (window.latentUi) ----
const ui = { info: null, pending: 0, dirty: false, lastInput: null, lastPng: null, result: null, point: null, samples: null, interp: null };
window.latentUi = ui;

// ---- the index page ----
async function indexPage() {
  try {
    const { models } = await getJson("/ui/api/models");
    const list = $("models");
    list.textContent = "";
    for (const m of models) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = "/ui/" + encodeURIComponent(m.name);
      a.textContent = m.name;
      li.append(a, " — " + describe(m));
      list.append(li);
    }
    if (!models.length) list.textContent = "No models.";
  } catch (e) { fail(e); }
}

function describe(m) {
  if (m.kind === "onnx") return "ONNX model (input " + m.input + ", " + m.input_dim + " values a row)";
  const what = m.kind === "image" ? m.height + "×" + m.width + " images" : m.columns.length + " columns";
  return (m.model || "autoencoder") + (m.variational ? " (variational)" : "") + " on " + what + ", code of " + m.code_dim +
    (m.decoder ? "; decoder served as " + m.decoder : "");
}

// ---- the model page ----
async function modelPage() {
  const name = decodeURIComponent(location.pathname.replace(/^\/ui\//, "").replace(/\/$/, ""));
  document.title = "latent serve: " + name;
  $("title").textContent = name;
  let info;
  try { info = await getJson("/ui/api/" + encodeURIComponent(name) + "/info"); } catch (e) { fail(e); return; }
  ui.info = info;
  $("subtitle").textContent = describe(info);
  startLive(name);
  if (info.kind === "onnx") {
    const n = $("notice");
    n.textContent = "Only live figures are shown. " + info.reason;
    n.hidden = false;
    return;
  }
  const loads = [loadCurve(name), loadConfig(name)];
  if (info.kind === "image") loads.push(imagePanel(info));
  else loads.push(tablePanel(info));
  await Promise.all(loads.map((p) => p.catch(fail)));
}

async function loadCurve(name) {
  const { epochs } = await getJson("/ui/api/" + encodeURIComponent(name) + "/curve");
  $("curve-panel").hidden = false;
  const series = [["train_loss", "#0b5cad"], ["test_loss", "#d62728"]];
  const c = $("curve"), ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  if (!epochs.length) { $("curve-summary").textContent = "metrics.jsonl has no epochs yet."; return; }
  const vals = epochs.flatMap((e) => series.map(([k]) => e[k]).filter((v) => typeof v === "number"));
  const lo = Math.min(...vals), hi = Math.max(...vals), pad = 40;
  const x = (i) => pad + (epochs.length === 1 ? 0.5 : i / (epochs.length - 1)) * (c.width - 2 * pad);
  const y = (v) => c.height - pad - (hi > lo ? (v - lo) / (hi - lo) : 0.5) * (c.height - 2 * pad);
  ctx.strokeStyle = "#888"; ctx.strokeRect(pad, pad, c.width - 2 * pad, c.height - 2 * pad);
  ctx.fillStyle = "#333"; ctx.font = "12px sans-serif";
  ctx.fillText(hi.toPrecision(4), 2, pad); ctx.fillText(lo.toPrecision(4), 2, c.height - pad);
  ctx.fillText("epoch", c.width / 2 - 15, c.height - 8);
  series.forEach(([k, color], s) => {
    ctx.strokeStyle = ctx.fillStyle = color; ctx.lineWidth = 2; ctx.beginPath();
    epochs.forEach((e, i) => { if (typeof e[k] === "number") { i ? ctx.lineTo(x(i), y(e[k])) : ctx.moveTo(x(i), y(e[k])); ctx.fillRect(x(i) - 2, y(e[k]) - 2, 4, 4); } });
    ctx.stroke(); ctx.fillText(k, c.width - pad - 80, pad + 14 + 14 * s);
  });
  const last = epochs[epochs.length - 1];
  $("curve-summary").textContent = epochs.length + " epoch(s); last: train loss " + fmt(last.train_loss) + ", test loss " + fmt(last.test_loss) + ".";
}

async function loadConfig(name) {
  const config = await getJson("/ui/api/" + encodeURIComponent(name) + "/config");
  $("config").textContent = JSON.stringify(config, null, 2);
  $("config-panel").hidden = false;
}

// Live request and latency figures of this model from the Prometheus text of /metrics: every
// 3 s, and shortly after the page's own requests.
let liveTick = null, liveTimer = null;
function liveSoon() {
  if (!liveTick || liveTimer) return;
  liveTimer = setTimeout(() => { liveTimer = null; liveTick(); }, 300);
}

function startLive(name) {
  const tick = liveTick = async () => {
    try {
      const r = await http("/metrics");
      if (!r.ok) return;
      const text = await r.text();
      let requests = 0, errors = 0, sum = 0, count = 0, anomalies = 0;
      const label = 'model="' + name + '"';
      for (const line of text.split("\n")) {
        if (line.startsWith("#") || line.indexOf(label) < 0) continue;
        const value = Number(line.slice(line.lastIndexOf(" ") + 1));
        if (line.startsWith("latent_requests_total{")) { requests += value; if (!/code="2/.test(line)) errors += value; }
        else if (line.startsWith("latent_request_duration_seconds_sum{")) sum = value;
        else if (line.startsWith("latent_request_duration_seconds_count{")) count = value;
        else if (line.startsWith("latent_anomalies_total{")) anomalies = value;
      }
      const dl = $("live");
      dl.textContent = "";
      for (const [k, v] of [["requests", requests], ["of them not 2xx", errors],
                            ["mean latency", count ? (1000 * sum / count).toFixed(3) + " ms" : "–"], ["anomalies flagged", anomalies]]) {
        const dt = document.createElement("dt"), dd = document.createElement("dd");
        dt.textContent = k; dd.textContent = String(v); dl.append(dt, dd);
      }
    } catch (e) { /* the next tick tries again */ }
  };
  tick();
  setInterval(tick, 3000);
}

// ---- image models ----
let pixels = null;  // the drawing: bytes 0..255 as numbers

async function imagePanel(info) {
  $("image-panel").hidden = false;
  const d = info.height * info.width;
  const draw = $("draw");
  draw.width = $("view-input").width = $("view-recon").width = $("view-error").width = info.width;
  draw.height = $("view-input").height = $("view-recon").height = $("view-error").height = info.height;
  pixels = new Array(d).fill(0);
  paintGray(draw, pixels, 1);
  setupDrawing(info);
  $("clear").addEventListener("click", () => { pixels.fill(0); paintGray(draw, pixels, 1); scoreDrawing(); });
  $("png-file").addEventListener("change", (ev) => { if (ev.target.files[0]) loadPng(ev.target.files[0]); });
  draw.addEventListener("dragover", (ev) => { ev.preventDefault(); draw.classList.add("drop"); });
  draw.addEventListener("dragleave", () => draw.classList.remove("drop"));
  draw.addEventListener("drop", (ev) => {
    ev.preventDefault(); draw.classList.remove("drop");
    if (ev.dataTransfer.files[0]) loadPng(ev.dataTransfer.files[0]);
  });
  const scatterLoaded = loadScatter(info).catch(fail);  // independent of the examples
  let examples = [];
  try {
    examples = (await getJson("/ui/api/" + encodeURIComponent(info.name) + "/examples")).examples;
  } catch (e) { fail(e); }
  ui.examples = examples;
  const strip = $("examples");
  examples.forEach((e, k) => {
    const b = document.createElement("button");
    b.type = "button";
    b.setAttribute("aria-pressed", "false");
    b.dataset.index = String(e.index);
    const label = info.class_names[e.label] !== undefined ? info.class_names[e.label] : e.label >= 0 ? "label " + e.label : "";
    b.setAttribute("aria-label", "test example " + e.index + (label !== "" ? ": " + label : ""));
    b.title = b.getAttribute("aria-label");
    const c = document.createElement("canvas");
    c.width = info.width; c.height = info.height;
    paintGray(c, e.row, 1);
    b.append(c);
    b.addEventListener("click", () => {
      for (const o of strip.children) o.setAttribute("aria-pressed", "false");
      b.setAttribute("aria-pressed", "true");
      pixels = e.row.slice();
      paintGray(draw, pixels, 1);
      scoreDrawing(true);
    });
    strip.append(b);
  });
  if (strip.firstChild && !ui.lastInput) strip.firstChild.click();  // something to look at from the start
  await Promise.all([scatterLoaded, info.variational && examples.length ? vaePanel(info, examples).catch(fail) : null]);
}

function setupDrawing(info) {
  const draw = $("draw");
  let down = false, last = null, cursor = [Math.floor(info.width / 2), Math.floor(info.height / 2)], pen = false;
  const at = (ev) => {
    const r = draw.getBoundingClientRect();
    return [(ev.clientX - r.left) / r.width * info.width, (ev.clientY - r.top) / r.height * info.height];
  };
  const stroke = (a, b) => {  // a soft round brush along the segment a-b
    const steps = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) * 3));
    for (let s = 0; s <= steps; s++) {
      const px = a[0] + (b[0] - a[0]) * s / steps, py = a[1] + (b[1] - a[1]) * s / steps;
      for (let y = Math.floor(py - 2); y <= Math.ceil(py + 2); y++) {
        for (let x = Math.floor(px - 2); x <= Math.ceil(px + 2); x++) {
          if (x < 0 || y < 0 || x >= info.width || y >= info.height) continue;
          const dist = Math.hypot(x + 0.5 - px, y + 0.5 - py);
          const v = Math.round(255 * Math.max(0, Math.min(1, 1.6 - dist)));
          const i = y * info.width + x;
          if (v > pixels[i]) pixels[i] = v;
        }
      }
    }
    paintGray(draw, pixels, 1);
    scoreDrawing();
  };
  draw.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    down = true; last = at(ev);
    draw.setPointerCapture(ev.pointerId);
    stroke(last, last);
  });
  draw.addEventListener("pointermove", (ev) => {
    if (!down) return;
    const p = at(ev);
    stroke(last, p);
    last = p;
  });
  const up = () => { down = false; };
  draw.addEventListener("pointerup", up);
  draw.addEventListener("pointercancel", up);
  draw.addEventListener("keydown", (ev) => {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (ev.key === " " || ev.key === "Enter") {
      ev.preventDefault(); pen = !pen;
      if (pen) stroke([cursor[0] + 0.5, cursor[1] + 0.5], [cursor[0] + 0.5, cursor[1] + 0.5]);
    } else if (moves[ev.key]) {
      ev.preventDefault();
      const from = [cursor[0] + 0.5, cursor[1] + 0.5];
      cursor = [Math.max(0, Math.min(info.width - 1, cursor[0] + moves[ev.key][0])), Math.max(0, Math.min(info.height - 1, cursor[1] + moves[ev.key][1]))];
      if (pen) stroke(from, [cursor[0] + 0.5, cursor[1] + 0.5]);
    }
  });
}

// Scores the drawing; while a request is in flight, later changes wait and the newest is sent next.
function scoreDrawing(fromExample) {
  if (!fromExample) for (const o of $("examples").children) o.setAttribute("aria-pressed", "false");
  if (ui.pending) { ui.dirty = true; return; }
  const row = pixels.slice();
  send(() => infer(ui.info.name, [{ name: "input", shape: [1, row.length], datatype: "FP32", data: row }]), row, null);
}

async function send(call, row, png) {
  ui.pending++;
  ui.dirty = false;
  try {
    const out = await call();
    ui.lastInput = row; ui.lastPng = png;
    showResult(row, out);
    hideMessage();
  } catch (e) { fail(e); } finally {
    ui.pending--;
    if (ui.dirty) scoreDrawing(true);
  }
}

function showResult(row, out) {
  const info = ui.info, scale = 1 / 255;
  const recon = out.reconstruction.data, score = out.score.data[0], anomaly = out.is_anomaly.data[0];
  paintGray($("view-input"), row, 1);
  paintGray($("view-recon"), recon, scale);
  const err = row.map((v, i) => (v * scale - recon[i]) ** 2);
  const top = Math.max(...err);
  paintHeat($("view-error"), err, top);
  $("error-max").textContent = "(white = " + top.toPrecision(3) + ")";
  verdict("", score, anomaly, info.threshold);
  ui.result = { score, anomaly, code: out.code.data };
  showPoint(out.code.data);
}

// A PNG file goes to the server as the BYTES input `image` (decoded there by latent's PNG reader);
// the browser decodes it too, only to put it on the drawing canvas.
async function loadPng(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  const b64 = btoa(bin);
  const info = ui.info;
  let row = null;
  try {
    const bitmap = await createImageBitmap(file);
    const c = document.createElement("canvas");
    c.width = info.width; c.height = info.height;
    const ctx = c.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, info.width, info.height).data;
    row = [];
    for (let i = 0; i < info.width * info.height; i++) row.push(Math.round(0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]));
  } catch (e) { /* the server names what is wrong with the file */ }
  if (ui.pending) await new Promise((resolve) => { const t = setInterval(() => { if (!ui.pending) { clearInterval(t); resolve(); } }, 20); });
  await send(async () => {
    const out = await infer(info.name, [{ name: "image", shape: [1], datatype: "BYTES", data: [b64] }]);
    if (row) { pixels = row.slice(); paintGray($("draw"), pixels, 1); }
    for (const o of $("examples").children) o.setAttribute("aria-pressed", "false");
    return out;
  }, row || new Array(info.width * info.height).fill(0), b64);
}

// ---- the scatter of test codes (the projection of `latent embed`) ----
let scatter = null;

async function loadScatter(info) {
  scatter = await getJson("/ui/api/" + encodeURIComponent(info.name) + "/scatter");
  const xs = scatter.x, ys = scatter.y;
  const q = (a, p) => { const s = a.slice().sort((u, v) => u - v); return s[Math.floor(p * (s.length - 1))]; };
  scatter.box = [q(xs, 0.005), q(xs, 0.995), q(ys, 0.005), q(ys, 0.995)];
  const legend = $("legend");
  legend.textContent = "";
  const labels = [...new Set(scatter.label)].filter((l) => l >= 0).sort((a, b) => a - b);
  for (const l of labels) {
    const li = document.createElement("li"), sw = document.createElement("span");
    sw.style.background = PALETTE[l % PALETTE.length];
    li.append(sw, scatter.class_names[l] !== undefined ? scatter.class_names[l] : "label " + l);
    legend.append(li);
  }
  drawScatter();
  if (ui.result) showPoint(ui.result.code);
}

function toCanvas(x, y) {
  const c = $("scatter"), [x0, x1, y0, y1] = scatter.box, pad = 16;
  const sx = (c.width - 2 * pad) / ((x1 - x0) || 1), sy = (c.height - 2 * pad) / ((y1 - y0) || 1);
  return [pad + (x - x0) * sx, c.height - pad - (y - y0) * sy];
}

function drawScatter() {
  const c = $("scatter"), ctx = c.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, c.width, c.height);
  for (let i = 0; i < scatter.x.length; i++) {
    const [px, py] = toCanvas(scatter.x[i], scatter.y[i]);
    ctx.fillStyle = scatter.label[i] >= 0 ? PALETTE[scatter.label[i] % PALETTE.length] : "#555";
    ctx.globalAlpha = 0.5;
    ctx.fillRect(px - 1, py - 1, 2, 2);
  }
  ctx.globalAlpha = 1;
}

function showPoint(code) {
  if (!scatter) return;
  let x = 0, y = 0;
  for (let j = 0; j < scatter.mean.length; j++) {
    const d = code[j] - scatter.mean[j];
    x += d * scatter.axes[0][j];
    if (scatter.axes.length > 1) y += d * scatter.axes[1][j];
  }
  ui.point = [x, y];
  drawScatter();
  const ctx = $("scatter").getContext("2d"), [px, py] = toCanvas(x, y);
  ctx.lineWidth = 3; ctx.strokeStyle = "#000";
  ctx.beginPath(); ctx.arc(px, py, 8, 0, 2 * Math.PI); ctx.stroke();
  ctx.lineWidth = 1.5; ctx.strokeStyle = "#fff";
  ctx.beginPath(); ctx.arc(px, py, 8, 0, 2 * Math.PI); ctx.stroke();
  $("scatter-pos").textContent = "The input's code projects to (" + x.toPrecision(4) + ", " + y.toPrecision(4) +
    ") on the first two principal components of the " + scatter.x.length + " test codes (the circle).";
}

// ---- VAEs: samples from the prior and interpolation, through the NAME-decoder model ----
function gaussian() {
  let u = 0;
  while (u === 0) u = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

async function vaePanel(info, examples) {
  $("vae-panel").hidden = false;
  const count = 16, grid = $("samples");
  for (let i = 0; i < count; i++) {
    const c = document.createElement("canvas");
    c.width = info.width; c.height = info.height;
    c.setAttribute("role", "img"); c.setAttribute("aria-label", "sample " + (i + 1));
    grid.append(c);
  }
  const newSamples = async () => {
    ui.pending++;
    try { await drawSamples(); } finally { ui.pending--; }
  };
  const drawSamples = async () => {
    const codes = [];
    for (let i = 0; i < count * info.code_dim; i++) codes.push(gaussian());
    const out = await infer(info.decoder, [{ name: "code", shape: [count, info.code_dim], datatype: "FP32", data: codes }]);
    const d = info.width * info.height, rec = out.reconstruction.data;
    ui.samples = { codes, images: rec };
    [...grid.children].forEach((c, i) => paintGray(c, rec.slice(i * d, (i + 1) * d), 1 / 255));
  };
  $("new-samples").addEventListener("click", () => newSamples().catch(fail));
  for (const [id, k] of [["interp-from", 0], ["interp-to", Math.min(1, examples.length - 1)]]) {
    const sel = $(id);
    examples.forEach((e, i) => {
      const o = document.createElement("option");
      o.value = String(i);
      o.textContent = "test example " + e.index + (info.class_names[e.label] !== undefined ? " (" + info.class_names[e.label] + ")" : "");
      sel.append(o);
    });
    sel.value = String(k);
    sel.addEventListener("change", () => interpolate().catch(fail));
  }
  let ends = null, endsKey = "", latest = 0;
  // Only the newest position is shown when slider moves overtake each other's replies.
  const interpolate = async () => {
    const seq = ++latest;
    const a = Number($("interp-from").value), b = Number($("interp-to").value), t = Number($("interp").value) / 10;
    $("interp-value").textContent = t.toFixed(1);
    ui.pending++;
    try {
      if (endsKey !== a + "," + b) {
        const d = info.width * info.height;
        const out = await infer(info.name, [{ name: "input", shape: [2, d], datatype: "FP32", data: examples[a].row.concat(examples[b].row) }], ["code"]);
        ends = [out.code.data.slice(0, info.code_dim), out.code.data.slice(info.code_dim)];
        endsKey = a + "," + b;
      }
      const code = ends[0].map((v, j) => (1 - t) * v + t * ends[1][j]);
      const out = await infer(info.decoder, [{ name: "code", shape: [1, info.code_dim], datatype: "FP32", data: code }]);
      if (seq !== latest) return;
      ui.interp = { from: a, to: b, t, code, image: out.reconstruction.data };
      paintGray($("interp-view"), out.reconstruction.data, 1 / 255);
    } finally { ui.pending--; }
  };
  $("interp").addEventListener("input", () => interpolate().catch(fail));
  await newSamples();
  await interpolate();
}

// ---- tabular models: a form of the stored columns ----
async function tablePanel(info) {
  $("table-panel").hidden = false;
  const box = $("columns");
  info.columns.forEach((c, j) => {
    const div = document.createElement("div"), label = document.createElement("label"), input = document.createElement("input");
    input.type = "number"; input.step = "any"; input.required = true; input.id = "col-" + j; input.name = c.name;
    input.value = fmt((c.min + c.max) / 2);
    label.htmlFor = input.id;
    label.textContent = c.name + " (training range " + fmt(c.min) + " to " + fmt(c.max) + ")";
    div.append(label, input);
    box.append(div);
  });
  const { examples } = await getJson("/ui/api/" + encodeURIComponent(info.name) + "/examples");
  ui.examples = examples;
  const sel = $("table-example");
  const none = document.createElement("option");
  none.value = ""; none.textContent = "(choose)";
  sel.append(none);
  examples.forEach((e, i) => {
    const o = document.createElement("option");
    o.value = String(i); o.textContent = "test row " + e.index;
    sel.append(o);
  });
  sel.addEventListener("change", () => {
    if (sel.value === "") return;
    // Seven significant digits: the float32 value the model was trained on, without binary noise.
    examples[Number(sel.value)].row.forEach((v, j) => { $("col-" + j).value = String(Number(v.toPrecision(7))); });
  });
  $("table-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const row = info.columns.map((c, j) => Number($("col-" + j).value));
    ui.pending++;
    infer(info.name, [{ name: "input", shape: [1, row.length], datatype: "FP32", data: row }]).then((out) => {
      ui.lastInput = row;
      const score = out.score.data[0], anomaly = out.is_anomaly.data[0];
      ui.result = { score, anomaly, code: out.code.data };
      verdict("table-", score, anomaly, info.threshold);
      const body = $("table-recon").querySelector("tbody");
      body.textContent = "";
      info.columns.forEach((c, j) => {
        const range = c.max - c.min > 0 ? c.max - c.min : 1;
        const tr = document.createElement("tr");
        for (const text of [c.name, fmt(row[j]), fmt(out.reconstruction.data[j] * range + c.min)]) {
          const td = document.createElement("td"); td.textContent = text; tr.append(td);
        }
        body.append(tr);
      });
      $("table-recon").hidden = false;
      hideMessage();
    }).catch(fail).finally(() => { ui.pending--; });
  });
}

document.addEventListener("DOMContentLoaded", async () => {
  try { await checkKey(); } catch (e) { fail(e); }
  if (document.body.dataset.page === "index") indexPage();
  else modelPage();
});
