// Drive the site in headless Chromium (puppeteer-core + Debian's chromium):
//   node web/test/browser.mjs PLAN_JSON OUT_JSON
// PLAN: {url, chromium, questions: [{question, context, lang}], ui: [{lang, question, context}, ...],
//        offline: true|false, screenshot: PATH|null, width, height, repeat}
// OUT: {load_ms, ready_ms, threads, workers, requests, progress, answers: [...], ui: [...], offline: {...}, screenshot}
import fs from "node:fs";
import puppeteer from "puppeteer-core";

const [planPath, outPath] = process.argv.slice(2);
const plan = JSON.parse(fs.readFileSync(planPath, "utf8"));
const out = { console: [] };

const browser = await puppeteer.launch({
  executablePath: plan.chromium || process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--no-first-run", "--disable-gpu"],
});

async function waitReady(page) {
  return page.evaluate(async () => {
    const info = await window.edgeadapt.ready;
    return { ...info, readyMs: performance.now(), progress: window.__progress || [] };
  });
}

// every value the page gives its progress bar while it loads (the bar moves with the bytes read)
const recordProgress = () => {
  const value = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, "value");
  Object.defineProperty(HTMLProgressElement.prototype, "value", {
    ...value,
    set(v) {
      (window.__progress ||= []).push(v);
      value.set.call(this, v);
    },
  });
};

async function askThroughPage(page, { lang, question, context }) {
  await page.select("#lang", lang);
  await page.$eval("#context", (el, value) => {
    el.value = value;
  }, context);
  await page.$eval("#question", (el, value) => {
    el.value = value;
  }, question);
  await page.$eval("#result", (el) => {
    el.hidden = true;
  });
  await page.click("#go");
  await page.waitForFunction(() => !document.getElementById("result").hidden || !document.getElementById("error").hidden, {
    timeout: 120000,
  });
  return page.evaluate(() => ({
    answer: document.getElementById("answer").textContent,
    marked: document.querySelector("#passage mark")?.textContent ?? "",
    score: document.getElementById("score").textContent,
    time: document.getElementById("time").textContent,
    error: document.getElementById("error").hidden ? null : document.getElementById("error").textContent,
    lang: document.getElementById("lang").value,
    langName: document.getElementById("lang").selectedOptions[0].textContent,
  }));
}

try {
  const page = await browser.newPage();
  page.on("console", (message) => out.console.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => out.console.push(`pageerror: ${error.message}`));
  out.requests = []; // the site's files the page asked for (the service worker's own fetches are not the page's)
  page.on("request", (request) => out.requests.push(new URL(request.url()).pathname));
  await page.setViewport({ width: plan.width || 360, height: plan.height || 740, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await page.evaluateOnNewDocument(recordProgress);
  const began = Date.now();
  await page.goto(plan.url, { waitUntil: "load" });
  const ready = await waitReady(page);
  out.wall_ready_ms = Date.now() - began;
  out.load_ms = ready.loadMs;
  out.ready_ms = ready.readyMs;
  out.threads = ready.threads;
  out.progress = ready.progress;
  out.workers = page.workers().length; // onnxruntime-web's threads (numThreads - 1 web workers)
  out.languages = ready.languages;
  out.language_names = await page.$$eval("#lang option", (options) => options.map((o) => [o.value, o.textContent]));

  out.answers = [];
  for (let round = 0; round < (plan.repeat || 1); round++) {
    const answers = await page.evaluate(async (questions) => {
      const results = [];
      for (const q of questions) {
        const a = await window.edgeadapt.answer(q.question, q.context, q.lang);
        results.push({ text: a.text, start: a.start_cp, end: a.end_cp, score: a.score, ms: a.ms, windows: a.windows, lang: a.lang });
      }
      return results;
    }, plan.questions || []);
    if (round === 0) out.answers = answers;
    else answers.forEach((a, i) => out.answers[i].ms_runs = [...(out.answers[i].ms_runs || [out.answers[i].ms]), a.ms]);
  }

  out.ui = [];
  for (const step of plan.ui || []) out.ui.push(await askThroughPage(page, step));

  if (plan.offline) {
    out.offline = { worker: await page.evaluate(() => window.edgeadapt.offline) };
    const client = await page.createCDPSession();
    const { installabilityErrors } = await client.send("Page.getInstallabilityErrors");
    out.installability_errors = installabilityErrors.map((e) => e.errorId);
    // network emulation: the page and its service worker (a target of its own) both lose the network
    await page.setOfflineMode(true);
    const workers = browser.targets().filter((t) => t.type() === "service_worker");
    for (const target of workers) {
      const session = await target.createCDPSession();
      await session.send("Network.enable");
      await session.send("Network.emulateNetworkConditions", { offline: true, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    }
    out.offline.workers_offline = workers.length;
    await page.reload({ waitUntil: "load" });
    const again = await waitReady(page);
    out.offline.ready_ms = again.readyMs;
    out.offline.progress = again.progress;
    out.offline.controlled = await page.evaluate(() => Boolean(navigator.serviceWorker && navigator.serviceWorker.controller));
    // a file the service worker does not hold must now fail: the network is really off for the page
    out.offline.probe = await page.evaluate(async () => {
      try {
        await fetch(`not-cached-${Date.now()}.txt`, { cache: "no-store" });
        return "reached the network";
      } catch (error) {
        return "failed";
      }
    });
    out.offline.ui = [];
    for (const step of plan.ui || []) out.offline.ui.push(await askThroughPage(page, step));
  }
  if (plan.screenshot) {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: plan.screenshot, fullPage: false });
    out.screenshot = plan.screenshot;
  }
} catch (error) {
  out.error = String(error && error.stack ? error.stack : error);
} finally {
  await browser.close();
  fs.writeFileSync(outPath, JSON.stringify(out, null, 1));
}
