// The LGTM studio page. Every text from the server or the person goes into the page with textContent, never
// as HTML. Every request goes to this page's own origin.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, splitFor: null, edited: new Set(), viewers: [], busy: false };

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  if (text !== null) node.textContent = text;
  return node;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new Error("the studio server does not answer; is `python -m tools.studio` still running?");
  }
  let data = null;
  try { data = await response.json(); } catch (err) { data = null; }
  if (!response.ok) throw new Error((data && data.error) || `request failed (${response.status})`);
  return data;
}

function currentModel() {
  const name = $("model").value;
  return state.info.models.find((m) => m.name === name) || state.info.models[0];
}

function updateModelNotes() {
  const model = currentModel();
  if (model.error) { $("model-note").textContent = model.error; return; }
  $("model-note").textContent = `window ${model.window} frames (${(model.window / 20).toFixed(1)} s)`;
  $("window-note").textContent = `1..${model.window} frames at 20 fps`;
  $("guidance").disabled = !model.guidance;
  $("guidance").title = model.guidance ? "classifier-free guidance scale"
    : "this model was trained without text dropout: guidance is fixed at 1";
  if (!model.guidance) $("guidance").value = "1";
}

function buildParts() {
  const box = $("parts");
  box.replaceChildren();
  for (const part of state.info.skeleton.parts) {
    const label = el("label", { for: `part-${part}` });
    const sw = el("span", { class: "swatch" });
    sw.style.background = PART_COLOURS[part];
    label.append(sw, document.createTextNode(part.replace("_", " ")));
    const input = el("input", { id: `part-${part}`, type: "text", maxlength: "400", placeholder: "does nothing" });
    input.addEventListener("input", () => state.edited.add(part));
    const clear = el("button", { type: "button", title: "clear: this part does nothing" }, "clear");
    clear.addEventListener("click", () => { input.value = ""; state.edited.add(part); });
    box.append(label, input, clear);
  }
}

async function loadInfo() {
  state.info = await api("/api/info");
  const info = state.info;
  for (const m of info.models) $("model").append(el("option", { value: m.name }, m.name));
  $("model").value = info.default_model;
  for (const s of info.samplers) $("sampler").append(el("option", { value: s }, s));
  $("sampler").value = info.defaults.sampler;
  $("steps").value = String(info.defaults.steps);
  for (const s of info.splitters) $("splitter").append(el("option", { value: s }, s));
  $("splitter").value = info.splitter;
  for (const e of info.encoders) $("search-encoder").append(el("option", { value: e }, e.replace("_", " ")));
  $("search").disabled = !info.search;
  if (!info.search) $("search-note").textContent = "search needs the TMR encoders and the dataset: run make repro first";
  for (const r of info.reports) {
    $("reports").append(el("a", { href: r.url, target: "_blank", rel: "noopener" }, `${r.name.replace("_", " ")} report`));
  }
  if (!info.reports.length) $("reports").append(el("span", { class: "note" }, "no reports yet (make repro)"));
  buildParts();
  updateModelNotes();
  $("length").value = String(Math.min(60, currentModel().window || 60));
  $("model").addEventListener("change", updateModelNotes);
  $("length-unit").addEventListener("change", convertLength);
}

// Switching frames <-> seconds keeps the length (20 frames per second).
function convertLength() {
  const value = Number($("length").value);
  const seconds = $("length-unit").value === "seconds";
  $("length").step = seconds ? "0.05" : "1";
  if (Number.isFinite(value) && value > 0) $("length").value = seconds ? String(value / 20) : String(Math.round(value * 20));
}

async function split() {
  showError("");
  const caption = $("caption").value;
  const result = await api("/api/split", { caption, splitter: $("splitter").value });
  for (const [part, text] of Object.entries(result.parts)) $(`part-${part}`).value = text === "does nothing" ? "" : text;
  state.splitFor = caption;
  state.edited.clear();
  $("split-note").textContent = `from the ${result.backend} splitter` + (result.note ? ` - ${result.note}` : "");
}

function lengthFields() {
  const value = $("length").value;
  return $("length-unit").value === "seconds" ? { seconds: value } : { frames: value };
}

async function generate() {
  showError("");
  if (state.busy) return;
  try {
    if (state.splitFor !== $("caption").value) await split();
    const parts = {};
    for (const part of state.info.skeleton.parts) parts[part] = $(`part-${part}`).value;
    const body = {
      caption: $("caption").value, parts, ...lengthFields(), sampler: $("sampler").value, steps: $("steps").value,
      seed: $("seed").value, guidance_scale: $("guidance").value, samples: $("samples").value,
      model: $("model").value, splitter: $("splitter").value, hand_set: [...state.edited],
    };
    const job = await api("/api/generate", body);
    setBusy(true);
    clearViewers($("results"));
    await follow(job.id);
  } catch (err) {
    showError(err.message);
  } finally {
    setBusy(false);
    refreshGallery();
  }
}

function setBusy(on) {
  state.busy = on;
  $("generate").disabled = on;
}

async function follow(jobId) {
  const shown = new Set();
  for (;;) {
    const job = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
    $("progress").max = Math.max(1, job.total);
    $("progress").value = job.step;
    $("progress-text").textContent = job.status === "queued" ? "queued"
      : `${job.phase}: step ${job.step} / ${job.total}`;
    for (const sample of job.samples || []) {
      if (!shown.has(sample.index)) {
        shown.add(sample.index);
        await addSampleViewer($("results"), job.settings, sample);
      }
    }
    if (job.status === "done") {
      for (const sample of job.samples) updateDownloads(sample);
      $("progress-text").textContent = `done: ${job.samples.length} sample(s), ${job.total} steps`;
      return;
    }
    if (job.status === "failed") throw new Error(job.error);
    await new Promise((r) => setTimeout(r, 150));
  }
}

function clearViewers(box) {
  for (const v of state.viewers.filter((v) => box.contains(v.canvas))) v.destroy();
  state.viewers = state.viewers.filter((v) => !box.contains(v.canvas));
  box.replaceChildren();
}

// A card: title, canvas, controls (play/pause, scrub, speed, zoom), part texts, downloads.
function viewerCard(box, title, motion, partTexts, cardId) {
  const card = el("div", { class: "viewer-card", id: cardId });
  card.append(el("h3", {}, title));
  const canvas = el("canvas", { width: "908", height: "680", class: "viewer" });
  card.append(canvas);
  const controls = el("div", { class: "controls" });
  const play = el("button", { type: "button", class: "play" }, "pause");
  const scrub = el("input", { type: "range", min: "0", max: String(motion.frames - 1), value: "0", class: "scrub" });
  const speed = el("select", { class: "speed", title: "speed" });
  for (const s of ["0.25", "0.5", "1", "1.5", "2"]) speed.append(el("option", { value: s }, `${s}x`));
  speed.value = "1";
  const zoomIn = el("button", { type: "button", title: "zoom in" }, "+");
  const zoomOut = el("button", { type: "button", title: "zoom out" }, "-");
  const counter = el("span", { class: "frame-counter", "data-frame": "-1" }, "frame -");
  controls.append(play, scrub, speed, zoomIn, zoomOut, counter);
  card.append(controls);
  if (partTexts) {
    const list = el("ul", { class: "part-texts" });
    for (const [part, text] of Object.entries(partTexts)) {
      const item = el("li");
      const sw = el("span", { class: "swatch" });
      sw.style.background = PART_COLOURS[part] || "#fff";
      item.append(sw, el("b", {}, `${part.replace("_", " ")}: `), document.createTextNode(text));
      list.append(item);
    }
    card.append(list);
  }
  const downloads = el("div", { class: "downloads" });
  card.append(downloads);
  box.append(card);
  const viewer = new MotionViewer(canvas, state.info.skeleton, motion, (frame) => {
    counter.textContent = `frame ${frame + 1} / ${motion.frames}`;
    counter.dataset.frame = String(frame);
    if (document.activeElement !== scrub) scrub.value = String(frame);
  });
  play.addEventListener("click", () => {
    viewer.setPlaying(!viewer.playing);
    play.textContent = viewer.playing ? "pause" : "play";
  });
  scrub.addEventListener("input", () => { viewer.setPlaying(false); play.textContent = "play"; viewer.seek(Number(scrub.value)); });
  speed.addEventListener("change", () => viewer.setSpeed(Number(speed.value)));
  zoomIn.addEventListener("click", () => viewer.zoom(0.8));
  zoomOut.addEventListener("click", () => viewer.zoom(1.25));
  state.viewers.push(viewer);
  return { card, viewer, downloads };
}

async function addSampleViewer(box, settings, sample) {
  const motion = await api(sample.motion);
  const title = `${settings.caption} - sample ${sample.index + 1} (seed ${settings.seed + sample.index})`;
  const { downloads } = viewerCard(box, title, motion, settings.parts, `sample-${sample.index}`);
  downloads.dataset.sample = String(sample.index);
  fillDownloads(downloads, sample.files);
}

function fillDownloads(box, files) {
  box.replaceChildren();
  for (const [name, url] of Object.entries(files)) box.append(el("a", { href: url, download: name, class: `download-${name.replace(".", "-")}` }, name));
}

function updateDownloads(sample) {
  const box = document.querySelector(`#results .downloads[data-sample="${sample.index}"]`);
  if (box) fillDownloads(box, sample.files);
}

async function search() {
  showError("");
  $("search").disabled = true;
  try {
    const { results } = await api("/api/search", {
      text: $("search-text").value, encoder: $("search-encoder").value, k: $("search-k").value });
    const list = $("search-results");
    list.replaceChildren();
    $("search-note").textContent = `${results.length} result(s)`;
    for (const r of results) {
      const item = el("li", { class: "search-result" });
      item.append(el("span", { class: "score" }, `${r.score.toFixed(3)}  `), el("span", { class: "caption" }, r.caption));
      if (r.part_text) item.append(el("span", { class: "note" }, `  (${r.part_text})`));
      const play = el("button", { type: "button", class: "play-result" }, "play");
      play.addEventListener("click", () => playResult(r).catch((err) => showError(err.message)));
      item.append(play);
      list.append(item);
    }
  } catch (err) {
    showError(err.message);
  } finally {
    $("search").disabled = !state.info.search;
  }
}

async function playResult(result) {
  const motion = await api(`/api/dataset/${encodeURIComponent(result.seg_id)}`);
  clearViewers($("search-viewer"));
  viewerCard($("search-viewer"), `${motion.caption} (${result.motion_id})`, motion, null, "dataset-viewer");
}

async function refreshGallery() {
  let entries;
  try { entries = await api("/api/gallery"); } catch (err) { return; }
  const list = $("gallery");
  list.replaceChildren();
  for (const g of entries) {
    const item = el("li", { class: "gallery-item" });
    const s = g.settings;
    item.append(el("span", {}, `${g.id}: ${s.caption} (${s.frames} frames, ${s.sampler} ${s.steps} steps, ${s.samples} sample(s)) - ${g.status}`));
    if (g.error) item.append(el("span", { class: "note" }, ` ${g.error}`));
    if (g.samples.length) {
      const show = el("button", { type: "button" }, "show");
      show.addEventListener("click", async () => {
        clearViewers($("results"));
        for (const sample of g.samples) await addSampleViewer($("results"), s, sample);
      });
      item.append(show);
    }
    list.append(item);
  }
}

window.addEventListener("DOMContentLoaded", () => {
  loadInfo().then(refreshGallery).catch((err) => showError(err.message));
  $("split").addEventListener("click", () => split().catch((err) => showError(err.message)));
  $("generate").addEventListener("click", generate);
  $("search").addEventListener("click", search);
  $("search-text").addEventListener("keydown", (e) => { if (e.key === "Enter") search(); });
  window.studioState = state;
});
