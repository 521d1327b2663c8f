// brushwork's page: plain JavaScript, no build step. The controls are built from
// GET /methods (a per-style model's style thumbnail from GET /models); a job is POST /jobs,
// followed through GET /jobs/{id}/events (read with fetch, so that a bearer token can be
// sent), its result fetched as a blob.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { methods: [], controls: [], models: {}, kinds: ["image"], content: null, styles: [],
                job: null, abort: null, kind: "image",
                announced: { id: null, state: null, tenth: -1 } };
const HISTORY_KEY = "brushwork.history";
const TOKEN_KEY = "brushwork.token";

function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set("Authorization", "Bearer " + token());
  const response = await fetch(path, { ...options, headers });
  if (!response.ok && !(options.allowError)) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    if (response.status === 401) { $("access").open = true; $("token").focus(); }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response;
}

function say(text, isError = false) {
  const el = $("form-status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// Object URLs of blobs (thumbnails, results) are revoked when their image is replaced.
function showBlob(img, blob) {
  if (img.dataset.blobUrl) URL.revokeObjectURL(img.dataset.blobUrl);
  const url = URL.createObjectURL(blob);
  img.dataset.blobUrl = url;
  img.src = url;
  return url;
}

function showUrl(img, url) {
  if (img.dataset.blobUrl) { URL.revokeObjectURL(img.dataset.blobUrl); delete img.dataset.blobUrl; }
  img.src = url;
}

// Screen readers hear the job's state changes and every tenth of its progress, not each step.
function announce(jobState, step, total) {
  const last = state.announced;
  if (last.id !== state.job) { last.id = state.job; last.state = null; last.tenth = -1; }
  const tenth = total ? Math.floor((10 * Math.min(step || 0, total)) / total) : -1;
  let text = null;
  if (jobState !== last.state) text = jobState;
  else if (jobState === "running" && tenth > last.tenth && tenth > 0 && tenth < 10) {
    text = (tenth * 10) + " percent";
  }
  last.state = jobState;
  if (tenth > last.tenth) last.tenth = tenth;
  if (text !== null) $("announce").textContent = "Painting: " + text;
}

// ------------------------------------------------------------------ inputs

function isVideo(file) {
  return (file.type || "").startsWith("video/") ||
    /\.(mp4|m4v|mov|mkv|webm|avi|ogv|mpg|mpeg|ts|flv)$/i.test(file.name || "");
}

function setContent(file, name) {
  const video = isVideo(file);
  if (video && !state.kinds.includes("video")) {
    say("This server does not take video jobs.", true);
    return;
  }
  state.content = { file, name: name || file.name || "photo", kind: video ? "video" : "image" };
  const thumb = $("content-thumb");
  const clip = $("content-clip");
  thumb.hidden = video;
  clip.hidden = !video;
  showBlob(video ? clip : thumb, file);
  $("content-name").textContent = state.content.name;
  $("content-chosen").hidden = false;
}

function addStyle(file, name) {
  state.styles.push({ file, name: name || file.name || "style", weight: 1 });
  renderStyles();
}

function renderStyles() {
  const list = $("style-list");
  for (const img of list.querySelectorAll("img[data-blob-url]")) {
    URL.revokeObjectURL(img.dataset.blobUrl);
  }
  list.replaceChildren();
  state.styles.forEach((style, index) => {
    const item = document.createElement("li");
    const img = document.createElement("img");
    showBlob(img, style.file);
    img.alt = "";
    const name = document.createElement("span");
    name.textContent = style.name;
    const id = "style-weight-" + index;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = "Weight of style " + (index + 1);
    const weight = document.createElement("input");
    Object.assign(weight, { type: "number", id, min: "0", step: "any", value: style.weight });
    weight.addEventListener("input", () => { style.weight = Number(weight.value); });
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", "Remove style " + style.name);
    remove.addEventListener("click", () => { state.styles.splice(index, 1); renderStyles(); });
    item.append(img, name, label, weight, remove);
    list.append(item);
  });
}

function dropZone(zone, input, onFiles, accepts = (f) => f.type.startsWith("image/")) {
  input.addEventListener("change", () => { onFiles([...input.files]); });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    onFiles([...e.dataTransfer.files].filter(accepts));
  });
}

async function exampleButtons(container, names, what, onPick) {
  for (const name of names) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.example = name;
    const img = document.createElement("img");
    img.alt = "";
    const text = document.createElement("span");
    text.textContent = name;
    button.append(img, text);
    button.setAttribute("aria-label", "Use the example " + what + " " + name);
    button.addEventListener("click", async () => {
      try {
        const blob = await (await api("/examples/" + encodeURIComponent(name))).blob();
        onPick(new File([blob], name + ".png", { type: "image/png" }), name);
      } catch (e) { say(e.message, true); }
    });
    container.append(button);
    api("/examples/" + encodeURIComponent(name))
      .then((r) => r.blob()).then((b) => { showBlob(img, b); })
      .catch(() => {});
  }
}

// ------------------------------------------------------------------ options

function optionLabel(option) {
  return option.name.replace(/_/g, " ");
}

function modelStyle(select) {
  // the styles a per-style model paints: their thumbnails beside the choice, named by
  // their titles (a multi-style model's names are what its "styles" option takes)
  const box = document.createElement("span");
  box.className = "model-styles";
  const show = () => {
    const model = state.models[select.value] || {};
    const styles = model.style ? [model.style] : (model.styles || []);
    box.replaceChildren(...styles.filter((s) => s.thumbnail).map((style) => {
      const img = document.createElement("img");
      img.className = "model-style";
      img.src = style.thumbnail;
      img.alt = "style: " + style.name;
      img.title = style.name + (style.source ? " (" + style.source + ")" : "") +
        (style.licence ? ", " + style.licence : "");
      return img;
    }));
    box.hidden = !box.children.length;
  };
  select.addEventListener("change", show);
  show();
  return box;
}

function control(option) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  const id = "opt-" + option.name;
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = optionLabel(option);
  const help = document.createElement("p");
  help.className = "help";
  help.id = id + "-help";
  help.textContent = option.help;
  let input;
  if (option.type === "bool") {
    wrap.classList.add("check");
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(option.default);
  } else if (option.choices && option.type !== "list") {
    input = document.createElement("select");
    for (const choice of option.choices) {
      const opt = document.createElement("option");
      opt.value = choice === null ? "" : String(choice);
      opt.textContent = choice === null ? "default" : String(choice);
      if (choice === option.default) opt.selected = true;
      input.append(opt);
    }
  } else if (option.type === "int" || option.type === "float") {
    input = document.createElement("input");
    input.type = "number";
    input.step = option.type === "int" ? "1" : "any";
    if (option.minimum !== null) input.min = String(option.minimum);
    if (option.maximum !== null) input.max = String(option.maximum);
    input.value = option.default === null ? "" : String(option.default);
    if (option.default === null) input.placeholder = "default";
  } else {
    input = document.createElement("input");
    input.type = "text";
    input.value = Array.isArray(option.default) ? option.default.join(",") :
      (option.default === null ? "" : String(option.default));
    if (option.default === null) input.placeholder = "default";
  }
  if (option.unavailable) {
    // needs a network this server lacks: a switch that cannot be turned on, or choices
    if (typeof option.unavailable === "string") {
      input.disabled = true;
      help.textContent += " (unavailable here: " + option.unavailable + ")";
    } else {
      const names = Object.keys(option.unavailable);
      if (input.tagName === "SELECT") {
        for (const opt of input.options) if (names.includes(opt.value)) opt.disabled = true;
      }
      help.textContent += " (not installed here: " + names.join(", ") + ")";
    }
  }
  input.id = id;
  input.dataset.option = option.name;
  input.setAttribute("aria-describedby", help.id);
  if (option.type === "bool") wrap.append(input, label, help);
  else if (option.name === "model" && input.tagName === "SELECT") {
    wrap.append(label, input, modelStyle(input), help);
  } else wrap.append(label, input, help);
  return wrap;
}

function readOption(option, input) {
  if (option.type === "bool") return input.checked;
  const raw = input.value.trim();
  if (raw === "") return null;
  if (option.type === "int") return Number.parseInt(raw, 10);
  if (option.type === "float") return Number(raw);
  if (option.type === "list") {
    const parts = raw.split(",").map((s) => s.trim()).filter(Boolean);
    return option.items === "int" ? parts.map((p) => Number.parseInt(p, 10)) :
      option.items === "float" ? parts.map(Number) : parts;
  }
  return raw;
}

function currentMethod() {
  return state.methods.find((m) => m.name === $("method").value);
}

function renderOptions() {
  const method = currentMethod();
  if (!method) return;
  $("method-help").textContent = method.description + (method.paper ? " (" + method.paper + ")" : "") +
    (method.style_images === false ? " It paints its network's own styles: no style image is used." : "") +
    (method.ready === false && method.problem ? " Unavailable with its defaults here: " + method.problem : "");
  const main = $("main-options");
  const more = $("more-options");
  main.replaceChildren();
  more.replaceChildren();
  const all = [...state.controls, ...method.options];
  for (const option of all) (option.main ? main : more).append(control(option));
}

function chosenOptions() {
  const method = currentMethod();
  const values = {};
  for (const option of [...state.controls, ...method.options]) {
    const input = document.querySelector('[data-option="' + option.name + '"]');
    if (!input) continue;
    const value = readOption(option, input);
    const same = JSON.stringify(value) === JSON.stringify(option.default);
    if (same || (value === null && option.default === null)) continue;
    if (value === null && !option.optional) continue;
    values[option.name] = value;
  }
  return values;
}

// ------------------------------------------------------------------ jobs

function history() {
  try { return JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]"); } catch (e) { return []; }
}

function remember(job) {
  const items = history().filter((h) => h.id !== job.id);
  items.unshift({ id: job.id, method: job.method, created: job.created, state: job.state,
                  content: state.content ? state.content.name : "" });
  localStorage.setItem(HISTORY_KEY, JSON.stringify(items.slice(0, 12)));
  renderHistory();
}

function updateHistory(id, jobState) {
  const items = history();
  const item = items.find((h) => h.id === id);
  if (item) { item.state = jobState; localStorage.setItem(HISTORY_KEY, JSON.stringify(items)); }
  renderHistory();
}

function renderHistory() {
  const list = $("history");
  list.replaceChildren();
  for (const item of history()) {
    const li = document.createElement("li");
    const when = new Date(item.created * 1000).toLocaleString();
    const text = document.createElement("span");
    text.textContent = item.method + " · " + (item.content || "photo") + " · " + when + " · " +
      (item.state || "") + " ";
    const show = document.createElement("button");
    show.type = "button";
    show.textContent = "Show";
    show.setAttribute("aria-label", "Show the " + item.method + " painting of " + when);
    show.addEventListener("click", () => follow(item.id));
    li.append(text, show);
    list.append(li);
  }
}

function setJobState(jobState) {
  $("job").dataset.state = jobState;
}

function setProgress(step, total, text, jobState) {
  const bar = $("progress");
  bar.max = total || 1;
  bar.value = Math.min(step || 0, total || 1);
  $("progress-text").textContent = text;
  announce(jobState || text, step, total);
}

function showJobError(message, jobState) {
  if (message) setJobState(jobState === "cancelled" ? "cancelled" : "failed");
  const el = $("job-error");
  el.textContent = message;
  el.hidden = !message;
}

async function showResult(job) {
  const blob = await (await api(job.links.result)).blob();
  const canvas = $("canvas");
  const video = job.kind === "video";
  const player = $("result-video");
  const url = showBlob(video ? player : canvas, blob);
  if (video) { canvas.hidden = true; player.hidden = false; }
  else {
    canvas.alt = "The finished painting";
    canvas.hidden = false;
  }
  $("canvas-caption").textContent = "Finished in " +
    (job.timings && job.timings.run_seconds !== null ? job.timings.run_seconds.toFixed(1) : "?") + " s";
  const link = $("download");
  link.href = url;
  link.download = "brushwork-" + job.id + (video ? ".mp4" : ".png");
  link.hidden = false;
  setProgress(1, 1, "done");
  setJobState("done");
}

function parseEvents(buffer, onEvent) {
  // returns the unparsed tail; calls onEvent(name, data) per complete event
  let index;
  while ((index = buffer.indexOf("\n\n")) >= 0) {
    const block = buffer.slice(0, index);
    buffer = buffer.slice(index + 2);
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (data.length) onEvent(name, JSON.parse(data.join("\n")));
  }
  return buffer;
}

async function follow(id) {
  if (state.abort) state.abort.abort();
  const controller = new AbortController();
  state.abort = controller;
  state.job = id;
  $("job").dataset.id = id;
  setJobState("connecting");
  $("job").hidden = false;
  $("download").hidden = true;
  $("canvas").hidden = true;
  $("result-video").hidden = true;
  $("result-video").removeAttribute("src");
  state.kind = "image";
  delete $("canvas").dataset.previewStep;
  $("canvas-caption").textContent = "";
  showJobError("");
  setProgress(0, 1, "connecting");
  let finished = false;
  const handle = async (name, data) => {
    if (name === "state") {
      state.kind = data.kind || "image";
      data.progress && setProgress(data.progress.step, data.progress.total, data.state);
      // a reader that comes late has missed "running": the state says where the job is
      if (data.state === "queued" || data.state === "running") setJobState(data.state);
      $("cancel").disabled = data.state !== "queued" && data.state !== "running";
      if (data.state === "done" || data.state === "failed" || data.state === "cancelled") {
        finished = true;
        updateHistory(id, data.state);  // it ended before this page followed it
      }
      if (data.state === "done") await showResult(data);
      else if (finished) showJobError(data.error || data.state, data.state);
    } else if (name === "running" || name === "started") {
      setJobState("running");
      $("progress-text").textContent = "painting";
      announce("running", 0, 0);
      $("cancel").disabled = false;
    } else if (name === "progress") {
      const total = data.total || 1;
      const unit = state.kind === "video" ? "frame " : "step ";
      setProgress(data.step, total, unit + data.step + " of " + total, "running");
      setJobState("running");
    } else if (name === "preview") {
      const canvas = $("canvas");
      showUrl(canvas, data.image);
      canvas.dataset.previewStep = data.step;  // the last preview shown (tests read it)
      canvas.alt = "The painting at step " + data.step;
      canvas.hidden = false;
      $("canvas-caption").textContent = "step " + data.step + (data.total ? " of " + data.total : "");
    } else if (name === "warning") {
      say("warning: " + data.message);
    } else if (name === "done" || name === "failed" || name === "cancelled") {
      finished = true;
      $("cancel").disabled = true;
      updateHistory(id, name);
      say(name === "done" ? "Done." : "");
      const job = await (await api("/jobs/" + id)).json();
      if (name === "done") await showResult(job);
      else { showJobError(job.error || name, name); setProgress(0, 1, name); }
    }
  };
  try {
    const response = await api("/jobs/" + id + "/events", { signal: controller.signal });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    const queue = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = parseEvents(buffer + value.replace(/\r/g, ""), (n, d) => queue.push([n, d]));
      while (queue.length) { const [n, d] = queue.shift(); await handle(n, d); }
      if (finished) break;
    }
  } catch (e) {
    if (e.name === "AbortError") return;
    if (e.status === 404) { showJobError(e.message); updateHistory(id, "expired"); return; }
  }
  // the stream ended without a final event (network): poll until the job ends
  while (!finished && state.job === id && !controller.signal.aborted) {
    await new Promise((r) => setTimeout(r, 2000));
    try {
      const job = await (await api("/jobs/" + id)).json();
      setProgress(job.progress.step, job.progress.total, job.state);
      if (job.state === "done") { finished = true; updateHistory(id, job.state); await showResult(job); }
      else if (job.state === "failed" || job.state === "cancelled") {
        finished = true;
        updateHistory(id, job.state);
        showJobError(job.error || job.state, job.state);
      }
    } catch (e) { showJobError(e.message); return; }
  }
}

async function submit(event) {
  event.preventDefault();
  if (!state.content) { say("Choose a photo first.", true); $("content-file").focus(); return; }
  // a per-style network paints its own styles (chosen in its options), from no style image
  const ownStyles = (currentMethod() || {}).style_images === false;
  const styles = ownStyles ? [] : state.styles;
  if (!ownStyles && !styles.length) { say("Choose at least one style.", true); $("style-file").focus(); return; }
  const form = new FormData();
  form.append("content", state.content.file, state.content.name);
  for (const style of styles) form.append("style", style.file, style.name);
  form.append("method", $("method").value);
  form.append("kind", state.content.kind || "image");
  form.append("options", JSON.stringify(chosenOptions()));
  form.append("styles", JSON.stringify(styles.map((s) => ({ weight: s.weight }))));
  $("start").disabled = true;
  $("download").hidden = true;
  say("Uploading…");
  try {
    const job = await (await api("/jobs", { method: "POST", body: form })).json();
    say("Queued.");
    remember(job);
    follow(job.id);
  } catch (e) {
    say(e.message, true);
  } finally {
    $("start").disabled = false;
  }
}

async function cancel() {
  if (!state.job) return;
  try {
    const answer = await (await api("/jobs/" + state.job, { method: "DELETE" })).json();
    say("Job " + answer.state + ".");
  } catch (e) { say(e.message, true); }
}

async function start() {
  $("token").value = token();
  $("save-token").addEventListener("click", () => {
    localStorage.setItem(TOKEN_KEY, $("token").value.trim());
    say("Token saved.");
    load();
  });
  $("clear-history").addEventListener("click", () => {
    localStorage.removeItem(HISTORY_KEY);
    renderHistory();
  });
  dropZone($("content-drop"), $("content-file"), (files) => files[0] && setContent(files[0]),
           (f) => f.type.startsWith("image/") || isVideo(f));
  dropZone($("style-drop"), $("style-file"), (files) => files.forEach((f) => addStyle(f)));
  $("method").addEventListener("change", renderOptions);
  $("paint").addEventListener("submit", submit);
  $("cancel").addEventListener("click", cancel);
  renderHistory();
  await load();
}

async function load() {
  try {
    const info = await (await api("/methods")).json();
    state.methods = info.methods;
    state.controls = info.controls;
    state.kinds = info.kinds || ["image"];
    const models = await (await api("/models")).json();
    state.models = Object.fromEntries(models.models.map((m) => [m.name, m]));
    const select = $("method");
    const chosen = select.value;
    select.replaceChildren();
    for (const method of info.methods) {
      const option = document.createElement("option");
      option.value = method.name;
      option.textContent = method.name + " (" + method.kind + ")";
      select.append(option);
    }
    const preferred = (info.defaults || {}).sync; // the server's one-pass default
    select.value = chosen || (info.methods.some((m) => m.name === preferred) ? preferred : info.methods[0].name);
    renderOptions();
    const examples = await (await api("/examples")).json();
    $("content-examples").replaceChildren();
    $("style-examples").replaceChildren();
    exampleButtons($("content-examples"), examples.contents, "photo", (f, n) => setContent(f, n));
    exampleButtons($("style-examples"), examples.styles, "style", (f, n) => addStyle(f, n));
    document.body.dataset.ready = "true";
  } catch (e) {
    say(e.message, true);
  }
}

document.addEventListener("DOMContentLoaded", start);
