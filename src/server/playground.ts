/**
 * The web playground served at `/`: one self-contained page (inline CSS and JS, nothing fetched but this
 * server's own API). A .ts module rather than an .html file so that it ships in dist with everything else.
 * String.raw keeps the script's backslashes as written; the script uses no backticks or dollar-braces.
 */
export const PLAYGROUND_HTML = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wina playground</title>
<style>
  :root { --fg: #1d232b; --muted: #6b7480; --line: #d9dee4; --accent: #2563eb; --bg: #f6f7f9; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 1rem; padding: 0.8rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { margin: 0; font-size: 1.2rem; }
  header span { color: var(--muted); font-size: 0.9rem; }
  main { max-width: 1200px; margin: 0 auto; padding: 1.2rem 1.5rem; }
  textarea { width: 100%; min-height: 5.5rem; padding: 0.6rem; font: inherit; border: 1px solid var(--line); border-radius: 6px; resize: vertical; }
  .controls { display: flex; flex-wrap: wrap; align-items: center; gap: 0.6rem 1.2rem; margin: 0.7rem 0 1rem; }
  label { display: inline-flex; align-items: center; gap: 0.4rem; color: var(--muted); font-size: 0.9rem; }
  input[type=number] { width: 5.5rem; }
  input, select { font: inherit; padding: 0.2rem 0.3rem; }
  output { min-width: 2.8rem; color: var(--fg); font-variant-numeric: tabular-nums; }
  button { font: inherit; padding: 0.35rem 1.1rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
  button:disabled { opacity: 0.45; cursor: default; }
  button.secondary { background: #fff; color: var(--accent); }
  #outputs { display: grid; grid-template-columns: 1fr; gap: 1rem; }
  #outputs.compare { grid-template-columns: 1fr 1fr; }
  .pane { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 0.8rem 1rem; min-width: 0; }
  .pane h2 { margin: 0 0 0.4rem; font-size: 0.95rem; }
  .text { white-space: pre-wrap; overflow-wrap: anywhere; min-height: 6rem; margin: 0; font: 15px/1.55 ui-serif, Georgia, serif; }
  .text .prompt { color: var(--muted); }
  .stats { margin: 0.6rem 0 0; color: var(--muted); font-size: 0.85rem; font-variant-numeric: tabular-nums; }
  .stats b { color: var(--fg); font-weight: 600; }
  #error { color: #b91c1c; min-height: 1.2rem; }
</style>
</head>
<body>
<header><h1>wina playground</h1><span id="model">loading model…</span></header>
<main>
  <textarea id="prompt" aria-label="Prompt">Once upon a time</textarea>
  <div class="controls">
    <label>Method
      <select id="method">
        <option>dense</option><option>teal</option><option selected>wina</option><option>wina-paper</option><option>cats</option>
      </select>
    </label>
    <label>Sparsity <input id="sparsity" type="range" min="0" max="0.95" step="0.05" value="0.5"><output id="sparsity-value">50%</output></label>
    <label>Max tokens <input id="max-tokens" type="number" min="1" value="128"></label>
    <label>Temperature <input id="temperature" type="number" min="0" step="0.1" value="0.8"></label>
    <label>Seed <input id="seed" type="number" min="0" value="1"></label>
    <label><input id="compare" type="checkbox"> dense vs sparse</label>
    <button id="generate">Generate</button>
    <button id="stop" class="secondary" disabled>Stop</button>
  </div>
  <p id="error" role="alert"></p>
  <section id="outputs">
    <article class="pane" id="pane-a" data-state="idle">
      <h2></h2><pre class="text"></pre>
      <p class="stats"><b data-stat="tokens">0</b> tokens · <b data-stat="tps">–</b> tokens/s · achieved sparsity <b data-stat="sparsity">–</b></p>
    </article>
    <article class="pane" id="pane-b" data-state="idle" hidden>
      <h2></h2><pre class="text"></pre>
      <p class="stats"><b data-stat="tokens">0</b> tokens · <b data-stat="tps">–</b> tokens/s · achieved sparsity <b data-stat="sparsity">–</b></p>
    </article>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let controller = null;

fetch("/v1/models").then((r) => r.json()).then((list) => {
  const m = list.data[0];
  $("model").textContent = m.id + " · context " + m.wina.context_length + " tokens · server default " +
    describe(m.wina.method, m.wina.sparsity);
  if (m.wina.method !== "dense") {
    $("method").value = m.wina.method;
    $("sparsity").value = String(m.wina.sparsity);
    showSparsity();
  }
}).catch(() => { $("model").textContent = "model info unavailable"; });

function describe(method, sparsity) {
  return method === "dense" ? "dense" : method + " " + Math.round(sparsity * 100) + "%";
}
function showSparsity() { $("sparsity-value").textContent = Math.round(Number($("sparsity").value) * 100) + "%"; }
$("sparsity").addEventListener("input", showSparsity);
$("compare").addEventListener("change", () => {
  $("pane-b").hidden = !$("compare").checked;
  $("outputs").classList.toggle("compare", $("compare").checked);
});

function stat(pane, name, value) { pane.querySelector('[data-stat="' + name + '"]').textContent = value; }

/** Streams one completion into a pane; resolves when the server sends [DONE]. */
async function run(pane, wina, signal) {
  const prompt = $("prompt").value;
  pane.querySelector("h2").textContent = describe(wina.method, wina.sparsity || 0);
  const text = pane.querySelector(".text");
  text.replaceChildren();
  const promptSpan = document.createElement("span");
  promptSpan.className = "prompt";
  promptSpan.textContent = prompt;
  const generated = document.createElement("span");
  generated.className = "generated";
  text.append(promptSpan, generated);
  stat(pane, "tokens", "0"); stat(pane, "tps", "–"); stat(pane, "sparsity", "–");
  pane.dataset.state = "waiting";
  delete pane.dataset.finish;
  const body = {
    prompt, stream: true, wina,
    max_tokens: Number($("max-tokens").value), temperature: Number($("temperature").value), seed: Number($("seed").value),
  };
  const res = await fetch("/v1/completions", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
  });
  if (!res.ok) throw new Error((await res.json()).error.message);
  pane.dataset.state = "running";
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error("the stream ended early");
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (!event.startsWith("data: ")) continue;
      const data = event.slice(6);
      if (data === "[DONE]") { pane.dataset.state = "done"; return; }
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      const choice = chunk.choices[0];
      if (choice && choice.text) generated.textContent += choice.text;
      if (chunk.wina) {
        stat(pane, "tokens", String(chunk.wina.tokens));
        stat(pane, "tps", chunk.wina.tokens > 1 ? chunk.wina.tokens_per_second.toFixed(1) : "–");
        stat(pane, "sparsity", (chunk.wina.achieved_sparsity * 100).toFixed(1) + "%");
      }
      if (choice && choice.finish_reason) pane.dataset.finish = choice.finish_reason;
    }
  }
}

$("generate").addEventListener("click", async () => {
  controller = new AbortController();
  $("generate").disabled = true; $("stop").disabled = false; $("error").textContent = "";
  const method = $("method").value;
  const sparse = method === "dense" ? { method: "dense" } : { method, sparsity: Number($("sparsity").value) };
  try {
    if ($("compare").checked) {
      // One after the other: the server runs one generation at a time anyway.
      await run($("pane-a"), { method: "dense" }, controller.signal);
      await run($("pane-b"), method === "dense" ? { method: "wina", sparsity: Number($("sparsity").value) } : sparse, controller.signal);
    } else {
      await run($("pane-a"), sparse, controller.signal);
    }
  } catch (e) {
    if (e.name !== "AbortError") $("error").textContent = e.message;
    for (const pane of document.querySelectorAll(".pane")) if (pane.dataset.state !== "done") pane.dataset.state = "stopped";
  } finally {
    $("generate").disabled = false; $("stop").disabled = true; controller = null;
  }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
</script>
</body>
</html>
`;
