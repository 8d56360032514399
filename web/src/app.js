// The page: loads the bundle once (with progress), then answers questions in the chosen language, offline.
// Windows and span decoding come from qa.js (the same as edgeadapt.runtime); the model runs in onnxruntime-web.
import * as ort from "./vendor/ort.wasm.min.mjs";
import { Tokenizer } from "./vendor/tokenizers.min.mjs";
import { QATokenizer, bestSpan, codePointOffset, padBatch } from "./qa.js";

const MODEL = new URL("./model/", location.href);
const $ = (id) => document.getElementById(id);
const ARRAYS = { float32: Float32Array, float16: Uint16Array, int8: Int8Array };

ort.env.wasm.wasmPaths = new URL("./vendor/", location.href).href;
ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
ort.env.logLevel = "error";

/** A file of the site as bytes: `entry` ({stored, gzip, bytes, size} from web.json) names what to fetch, relative to
 * model/. `.gz` files are decompressed here (DecompressionStream): the site stores its big files compressed. `onBytes`
 * counts the bytes as they arrive (compressed), which moves the progress bar. */
async function fetchFile(entry, onBytes) {
  const response = await fetch(new URL(entry.stored, MODEL));
  if (!response.ok) throw new Error(`${entry.stored}: HTTP ${response.status}`);
  let source = response.body;
  if (!source) source = new Blob([await response.arrayBuffer()]).stream();
  const reader = source.getReader();
  const first = await reader.read();
  // a host that serves .gz files with Content-Encoding: gzip has the browser decompress them already
  const gzip = entry.gzip && !first.done && first.value[0] === 0x1f && first.value[1] === 0x8b;
  let stream = new ReadableStream({
    start(controller) {
      if (first.done) return controller.close();
      onBytes(first.value.byteLength);
      controller.enqueue(first.value);
    },
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      onBytes(value.byteLength);
      controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  if (gzip) {
    if (typeof DecompressionStream === "undefined") {
      throw new Error("this browser cannot decompress the model (no DecompressionStream): use Chrome 80+, Safari 16.4+ or Firefox 113+");
    }
    stream = stream.pipeThrough(new DecompressionStream("gzip"));
  }
  const bytes = new Uint8Array(entry.size);
  let at = 0;
  const out = stream.getReader();
  for (;;) {
    const { done, value } = await out.read();
    if (done) break;
    if (at + value.byteLength > bytes.byteLength) throw new Error(`${entry.stored}: more than the ${entry.size} bytes expected`);
    bytes.set(value, at);
    at += value.byteLength;
  }
  if (at !== bytes.byteLength) throw new Error(`${entry.stored}: ${at} bytes, ${entry.size} expected`);
  return bytes;
}

function tensorsOf(bytes, index) {
  const tensors = {};
  for (const [name, entry] of Object.entries(index)) {
    const Kind = ARRAYS[entry.dtype];
    const data = new Kind(bytes.slice(entry.offset, entry.offset + entry.bytes).buffer);
    tensors[name] = new ort.Tensor(entry.dtype, data, entry.shape);
  }
  return tensors;
}

/** One backbone session; a language = its tensors fed over the slot defaults (onnxruntime's adapters in Python). */
class Engine {
  constructor(config, session, tokenizer, defaults, languages) {
    this.config = config;
    this.session = session;
    this.tokenizer = tokenizer;
    this.feeds = {};
    for (const [lang, tensors] of Object.entries(languages)) this.feeds[lang] = { ...defaults, ...tensors };
    this.queue = Promise.resolve();
  }

  get languages() {
    return Object.keys(this.feeds).sort();
  }

  answer(question, context, lang) {
    const run = this.queue.then(() => this.#answer(question, context, lang));
    this.queue = run.catch(() => {});
    return run;
  }

  async #answer(question, context, lang) {
    if (!(lang in this.feeds)) throw new Error(`this site has no language '${lang}'`);
    const began = performance.now();
    const windows = this.tokenizer.windows(question, context);
    const starts = [];
    const ends = [];
    const batch = this.config.batch_size;
    for (let offset = 0; offset < windows.length; offset += batch) {
      const chunk = windows.slice(offset, offset + batch);
      const { length, ids, mask, types } = padBatch(chunk, this.tokenizer.padId);
      const dims = [chunk.length, length];
      const inputs = {
        input_ids: new ort.Tensor("int64", ids, dims),
        attention_mask: new ort.Tensor("int64", mask, dims),
        token_type_ids: new ort.Tensor("int64", types, dims),
        ...this.feeds[lang],
      };
      const feeds = {};
      for (const name of this.session.inputNames) feeds[name] = inputs[name];
      const out = await this.session.run(feeds);
      const [start, end] = [out.start_logits.data, out.end_logits.data];
      for (let row = 0; row < chunk.length; row++) {
        starts.push(start.subarray(row * length, (row + 1) * length));
        ends.push(end.subarray(row * length, (row + 1) * length));
      }
    }
    const span = bestSpan(context, windows, starts, ends, this.config.max_answer_tokens);
    const ms = performance.now() - began;
    return {
      ...span,
      lang,
      ms,
      windows: windows.length,
      start_cp: codePointOffset(context, span.start),
      end_cp: codePointOffset(context, span.end),
    };
  }
}

async function load(onProgress) {
  const began = performance.now();
  const config = await (await fetch(new URL("web.json", MODEL))).json();
  const total = [...Object.values(config.files), config.wasm].reduce((sum, entry) => sum + entry.bytes, 0);
  let loaded = 0;
  const progress = (n) => {
    loaded += n;
    onProgress(Math.min(loaded / total, 1), loaded, total);
  };
  const file = (name) => fetchFile(config.files[name], progress);
  // onnxruntime-web's WASM comes compressed too: the page hands it the bytes (its .mjs loader still comes from vendor/)
  const [wasm, tokenizerBytes, graph, defaultsBytes] = await Promise.all([
    fetchFile(config.wasm, progress),
    file(config.tokenizer),
    file(config.backbone),
    file(config.defaults.file),
  ]);
  ort.env.wasm.wasmBinary = wasm;
  const languages = {};
  for (const [lang, record] of Object.entries(config.languages)) {
    languages[lang] = record.file ? tensorsOf(await file(record.file), record.tensors) : {};
  }
  onProgress(1, total, total, "starting the model");
  const json = JSON.parse(new TextDecoder().decode(tokenizerBytes));
  const tokenizer = new QATokenizer(Tokenizer, json, { maxLength: config.max_length, stride: config.stride });
  const session = await ort.InferenceSession.create(graph, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  const engine = new Engine(config, session, tokenizer, tensorsOf(defaultsBytes, config.defaults.tensors), languages);
  return { engine, config, loadMs: performance.now() - began };
}

function languageName(code, record) {
  if (record && record.name) return record.name;
  try {
    const name = new Intl.DisplayNames([code], { type: "language" }).of(code);
    if (name && name !== code) return name;
  } catch {
    /* unknown code: show it as is */
  }
  return code;
}

function showAnswer(answer, context) {
  $("answer").textContent = answer.text || "(no answer found)";
  $("score").textContent = `score ${answer.score.toFixed(3)}`;
  $("time").textContent = `${Math.round(answer.ms)} ms`;
  const passage = $("passage");
  passage.replaceChildren();
  passage.append(document.createTextNode(context.slice(0, answer.start)));
  if (answer.end > answer.start) {
    const mark = document.createElement("mark");
    mark.textContent = context.slice(answer.start, answer.end);
    passage.append(mark);
  }
  passage.append(document.createTextNode(context.slice(answer.end)));
  $("result").hidden = false;
  scrollToMark(passage);
}

function scrollToMark(passage) {
  const mark = passage.querySelector("mark");
  if (mark && mark.scrollIntoView) mark.scrollIntoView({ block: "nearest" });
}

async function offlineSupport() {
  const note = $("offline");
  if (!("serviceWorker" in navigator) || !self.isSecureContext) {
    note.textContent =
      "This tab keeps answering while it stays open. To keep the page offline, open it over https or localhost (docs/web.md).";
    return "unavailable";
  }
  try {
    await navigator.serviceWorker.register("sw.js");
    await navigator.serviceWorker.ready;
    note.textContent = "Saved on this device: works offline.";
    return "ready";
  } catch (error) {
    note.textContent = `Offline use is not available: ${error.message}`;
    return "failed";
  }
}

function main() {
  const select = $("lang");
  const ready = load((fraction, loaded, total, stage) => {
    $("load-bar").value = fraction;
    $("load-text").textContent = stage
      ? `Loading the model… ${stage}`
      : `Loading the model… ${(loaded / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`;
  });
  const offline = ready.then(() => offlineSupport());
  window.edgeadapt = {
    ready: ready.then(({ loadMs, engine }) => ({ loadMs, languages: engine.languages, threads: ort.env.wasm.numThreads })),
    offline,
    answer: async (question, context, lang) => (await ready).engine.answer(question, context, lang),
  };
  ready.then(
    ({ engine, config }) => {
      const saved = localStorage.getItem("edgeadapt.lang");
      for (const lang of engine.languages) {
        const option = document.createElement("option");
        option.value = lang;
        option.textContent = languageName(lang, config.languages[lang]);
        option.lang = lang;
        select.append(option);
      }
      if (saved && engine.languages.includes(saved)) select.value = saved;
      document.documentElement.lang = select.value;
      select.disabled = false;
      $("go").disabled = false;
      document.body.dataset.state = "ready";
    },
    (error) => {
      document.body.dataset.state = "error";
      $("error").textContent = `The model could not be loaded: ${error.message}`;
      $("error").hidden = false;
    },
  );
  select.addEventListener("change", () => {
    localStorage.setItem("edgeadapt.lang", select.value);
    document.documentElement.lang = select.value;
  });
  $("ask").addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = $("question").value;
    const context = $("context").value;
    $("go").disabled = true;
    document.body.dataset.state = "answering";
    try {
      const answer = await window.edgeadapt.answer(question, context, select.value);
      showAnswer(answer, context);
      $("error").hidden = true;
    } catch (error) {
      $("error").textContent = error.message;
      $("error").hidden = false;
    } finally {
      $("go").disabled = false;
      document.body.dataset.state = "ready";
    }
  });
}

main();
