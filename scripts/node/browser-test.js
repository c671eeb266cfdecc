// The browser test's driver (http_test's RealBrowser test runs it): builds browser/page.js with
// esbuild, serves it from two loopback origins (one in the services' cors-allowed-origins, one
// not), and drives Debian's chromium, headless, with puppeteer-core through both pages.
//
// usage: NODE_PATH=scripts/node/node_modules node browser-test.js GENERATED_DIR
//   env: PLANNING_URL PROGRESS_URL PATIENT_TOKEN PATIENT_ID PAGE_PORT OTHER_PORT [CHROMIUM]
// Prints one JSON line per page ("patient {...}", "blocked {...}") with what the page showed,
// the preflights chromium sent and the CORS errors it reported; exits non-zero when a page
// does not finish.
"use strict";
const fs = require("fs");
const http = require("http");
const os = require("os");
const path = require("path");
const esbuild = require("esbuild");
const puppeteer = require("puppeteer-core");

const generated = process.argv[2];
const env = process.env;

async function bundle() {
  const result = await esbuild.build({
    entryPoints: [path.join(__dirname, "browser", "page.js")],
    bundle: true,
    write: false,
    format: "iife",
    platform: "browser",
    target: "es2020",
    nodePaths: [generated, path.join(__dirname, "node_modules")],
    logLevel: "error",
  });
  return result.outputFiles[0].text;
}

function serve(port, script) {
  const page = "<!doctype html><html><head><meta charset=\"utf-8\"><title>physio patient</title></head>" +
               "<body><p id=\"status\">loading</p><pre id=\"results\"></pre><script src=\"/app.js\"></script></body></html>";
  const server = http.createServer((req, res) => {
    if (req.url.startsWith("/app.js")) {
      res.writeHead(200, { "Content-Type": "text/javascript" });
      res.end(script);
    } else if (req.url === "/favicon.ico") {
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end(page);
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

async function visit(browser, origin, mode) {
  const page = await browser.newPage();
  const seen = { preflights: [], corsErrors: [], console: [] };
  // What chromium itself did on the network: its CORS preflights and the CORS errors it raised.
  const cdp = await page.createCDPSession();
  await cdp.send("Network.enable");
  cdp.on("Network.requestWillBeSent", (event) => {
    if (event.type === "Preflight" || event.request.method === "OPTIONS") {
      seen.preflights.push(event.request.url);
    }
  });
  cdp.on("Network.loadingFailed", (event) => {
    if (event.corsErrorStatus) seen.corsErrors.push(event.corsErrorStatus.corsError);
  });
  page.on("console", (message) => seen.console.push(message.text()));
  const query = new URLSearchParams({
    mode, patient: env.PATIENT_ID, token: env.PATIENT_TOKEN,
    planning: env.PLANNING_URL, progress: env.PROGRESS_URL, exercise: env.EXERCISE_ID || "",
  });
  await page.goto(`${origin}/?${query}`, { waitUntil: "load", timeout: 30000 });
  await page.waitForSelector("body[data-done=true]", { timeout: 30000 });
  const results = JSON.parse(await page.$eval("#results", (element) => element.textContent));
  results.shown = await page.$eval("#status", (element) => element.textContent);
  results.preflights = seen.preflights.length;
  results.corsErrors = seen.corsErrors;
  results.consoleCorsMessages = seen.console.filter((text) => text.includes("CORS")).length;
  await page.close();
  return results;
}

async function main() {
  const script = await bundle();
  const allowed = await serve(Number(env.PAGE_PORT), script);
  const other = await serve(Number(env.OTHER_PORT), script);
  const userData = fs.mkdtempSync(path.join(os.tmpdir(), "physio-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // As root in a sandbox-less container; no background traffic to hosts this machine cannot reach.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", `--user-data-dir=${userData}`],
  });
  try {
    const patient = await visit(browser, `http://127.0.0.1:${env.PAGE_PORT}`, "patient");
    console.log(`patient ${JSON.stringify(patient)}`);
    const blocked = await visit(browser, `http://127.0.0.1:${env.OTHER_PORT}`, "blocked");
    console.log(`blocked ${JSON.stringify(blocked)}`);
  } finally {
    await browser.close();
    allowed.close();
    other.close();
    fs.rmSync(userData, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`browser-test failed: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
