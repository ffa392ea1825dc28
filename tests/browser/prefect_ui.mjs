// node prefect_ui.mjs SPEC.json
// Opens a real Prefect server's UI (V2, React) in Debian's headless Chromium,
// the way a user would see Tracer's artifacts: the flow run's Artifacts tab,
// then (by clicking its card) the markdown artifact's page, then the table
// artifact's page. Saves screenshots and prints one line of JSON saying what
// rendered; tests/prefect/test_ui.py decides what is right.
//
// SPEC: {"uiBase": "http://127.0.0.1:PORT/v2", "flowRunId": "...",
//        "markdown": {"id": "...", "key": "..."}, "table": {"id": "...", "key": "..."},
//        "outDir": "/path/to/screenshots", "prefix": "prefect-ui", "timeoutMs": 20000}
// Exit status 0 when every page reached its rendered state, 1 otherwise (the
// JSON then has "error" and a "*-failure.png" screenshot of where it stopped).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const timeout = spec.timeoutMs ?? 20000;
const prefix = spec.prefix ?? "prefect-ui";
const origin = new URL(spec.uiBase).origin;
mkdirSync(spec.outDir, { recursive: true });
for (const old of readdirSync(spec.outDir)) {  // what is there is from this run only
  if (old.startsWith(`${prefix}-`) && old.endsWith(".png")) rmSync(join(spec.outDir, old));
}
const shot = (name) => join(spec.outDir, `${prefix}-${name}.png`);

let step = "start";  // which page the browser is on, for the errors it reports
const result = {
  flowRun: null, markdown: null, table: null, error: null,
  consoleErrors: [], pageErrors: [], httpErrors: [], blocked: [], unsettled: [], timingsMs: {},
};
const started = Date.now();
let lap = started;
const time = (name) => { const now = Date.now(); result.timingsMs[name] = now - lap; lap = now; };

// A fresh profile; no internet here, and nothing leaves the machine anyway:
// requests to anywhere but the Prefect server are refused and listed.
const profile = mkdtempSync(join(tmpdir(), "tracer-prefect-ui-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1400, height: 1000 },
  colorScheme: "light",
  timeout,
});
await context.route((url) => url.origin !== origin, (route) => {
  result.blocked.push(route.request().url());
  return route.abort("blockedbyclient");
});
context.setDefaultTimeout(timeout);
time("launch");

const page = context.pages()[0] ?? await context.newPage();
page.on("console", (message) => {
  if (message.type() === "error") {
    result.consoleErrors.push({ step, text: message.text(), url: message.location()?.url ?? "" });
  }
});
page.on("pageerror", (error) => result.pageErrors.push({ step, text: String(error?.stack ?? error) }));
page.on("response", (response) => {
  if (response.status() >= 400) {
    const request = response.request();
    result.httpErrors.push({ step, status: response.status(), method: request.method(),
                             url: response.url(), body: request.postData() ?? null });
  }
});

// What the markdown artifact's page shows, once rendered (else null): Prefect's
// react-markdown output in [data-testid=markdown-display], each mermaid block
// replaced by its SVG (or its error); a skeleton stands in while either loads.
// Checked and read in one go: the route may re-render while it settles.
function readMarkdown() {
  const md = document.querySelector("[data-testid=markdown-display]");
  if (!md || !md.querySelector("h2") || md.querySelector("[data-slot=skeleton]")) return null;
  const text = (element) => element.textContent.replace(/\s+/g, " ").trim();
  const tables = [...md.querySelectorAll("table")];
  const rows = tables.length ? [...tables[0].querySelectorAll("tbody tr")]
    .map((tr) => [...tr.querySelectorAll("td")].map(text)) : [];
  const svgs = [...md.querySelectorAll("svg[id^=mermaid-]")];
  const chart = svgs.find((svg) => svg.getAttribute("aria-roledescription") === "gantt");
  const pie = svgs.find((svg) => svg.getAttribute("aria-roledescription") === "pie");
  const pieBox = pie?.getBoundingClientRect();
  // "Where the time went": the table after the pie, one row per task.
  const split = tables.find((table) => text(table.querySelector("thead th:nth-child(2)") ?? table) === "on-CPU");
  const splitRows = split ? [...split.querySelectorAll("tbody tr")]
    .map((tr) => [...tr.querySelectorAll("td")].map(text)) : [];
  const box = chart?.getBoundingClientRect();
  const mdBox = md.getBoundingClientRect();
  const tableBox = tables[0]?.getBoundingClientRect();
  return {
    url: location.href,
    activeTab: text(document.querySelector("[role=tab][aria-selected=true]") ?? md),
    headings: [...md.querySelectorAll("h2, h3")].map(text),
    // The paragraphs of the "Cost" section, as the page shows them.
    cost: (() => {
      const heading = [...md.querySelectorAll("h3")].find((h) => text(h) === "Cost");
      const paragraphs = [];
      for (let e = heading?.nextElementSibling; e && e.tagName === "P"; e = e.nextElementSibling) {
        paragraphs.push(text(e));
      }
      return paragraphs;
    })(),
    tables: tables.length,
    columns: tables.length ? [...tables[0].querySelectorAll("thead th")].map(text) : [],
    rows,
    taskCells: rows.map((cells) => cells[0]),
    // How far the task table sticks out of the markdown column (into the
    // details panel beside it).
    tableOverflowPx: tableBox ? Math.max(0, Math.round(tableBox.right - mdBox.right)) : null,
    timeSplit: {
      columns: split ? [...split.querySelectorAll("thead th")].map(text) : [],
      rows: splitRows,
      taskCells: splitRows.map((cells) => cells[0]),
      pie: {
        slices: pie ? pie.querySelectorAll("path.pieCircle").length : 0,
        legend: pie ? [...pie.querySelectorAll(".legend text")].map(text) : [],
        width: pieBox ? Math.round(pieBox.width) : 0,
        height: pieBox ? Math.round(pieBox.height) : 0,
      },
    },
    mermaid: {
      svgs: svgs.length,
      kinds: svgs.map((svg) => svg.getAttribute("aria-roledescription")),
      kind: chart?.getAttribute("aria-roledescription") ?? null,
      width: box ? Math.round(box.width) : 0,
      height: box ? Math.round(box.height) : 0,
      bars: chart ? chart.querySelectorAll("rect.task").length : 0,
      labels: chart ? [...chart.querySelectorAll("text.taskText, text.taskTextOutsideRight, text.taskTextOutsideLeft")].map(text) : [],
      // How tall its task labels are on the screen, after the SVG is scaled to the column.
      labelHeightPx: chart ? Math.min(...[...chart.querySelectorAll("text.taskText, text.taskTextOutsideRight, text.taskTextOutsideLeft")]
        .map((t) => Math.round(t.getBoundingClientRect().height))) : 0,
      errors: [...md.querySelectorAll("p")].map(text)
        .filter((t) => t.startsWith("Failed to render mermaid")),
    },
    leftoverMermaidSource: [...md.querySelectorAll("code")].some((c) => /^\s*(gantt|pie)\b/m.test(c.textContent)),
  };
}

// Prefect's pages render, then re-render as their queries come in (the
// artifact's page mounts its markdown twice, mermaid drawing twice): wait for
// the DOM to be quiet (no element added or removed for `quietMs`), at most
// `timeout`, before reading what is there.
async function settle(quietMs = 500) {
  return page.evaluate(([quiet, limit]) => new Promise((resolve) => {
    const started = performance.now();
    let timer;
    const observer = new MutationObserver(() => { clearTimeout(timer); timer = setTimeout(done, quiet); });
    const done = () => { observer.disconnect(); clearTimeout(cap); resolve(true); };
    const cap = setTimeout(() => { observer.disconnect(); clearTimeout(timer); resolve(false); }, limit);
    observer.observe(document.body, { subtree: true, childList: true });
    timer = setTimeout(done, quiet);
  }), [quietMs, timeout]);
}
// Waits for `reader` to see its page rendered, for the page to settle, and
// returns what `reader` then sees (it is still rendered, or this waits again).
async function read(reader, arg) {
  await page.waitForFunction(reader, arg);
  if (!await settle()) result.unsettled.push(step);
  return (await page.waitForFunction(reader, arg)).jsonValue();
}

try {
  // 1. The flow run's Artifacts tab (?tab=Artifacts selects it): one card per artifact.
  step = "flow-run";
  await page.goto(`${spec.uiBase}/runs/flow-run/${spec.flowRunId}?tab=Artifacts`);
  const grid = page.locator("[data-testid=flow-run-artifacts-grid]");
  const markdownCard = grid.locator(`a[href$="/artifacts/artifact/${spec.markdown.id}"]`);
  const readCards = (ids) => {
    const links = [...document.querySelectorAll("[data-testid=flow-run-artifacts-grid] a")];
    const cards = links.map((a) => ({
      href: new URL(a.href).pathname,
      type: a.querySelector("p")?.textContent.trim() ?? null,
      key: a.querySelector("h3, h4")?.textContent.trim() ?? null,
    }));
    if (!ids.every((id) => cards.some((card) => card.href.endsWith(`/artifacts/artifact/${id}`)))) {
      return null;
    }
    const tab = document.querySelector("[role=tab][aria-selected=true]");
    return { url: location.href, activeTab: tab?.textContent.trim() ?? null, cards };
  };
  const ids = [spec.markdown.id, spec.table.id];
  result.flowRun = await read(readCards, ids);
  await page.screenshot({ path: shot("flow-run-artifacts"), fullPage: true });
  result.flowRun.screenshot = shot("flow-run-artifacts");
  time("flowRun");

  // 2. The markdown artifact's page, reached the way a user does: its card.
  step = "markdown";
  await markdownCard.click();
  await page.waitForURL((url) => url.pathname.endsWith(`/artifacts/artifact/${spec.markdown.id}`));
  result.markdown = await read(readMarkdown);
  await page.screenshot({ path: shot("markdown-artifact"), fullPage: true });
  result.markdown.screenshot = shot("markdown-artifact");
  if (result.markdown.mermaid.svgs) {
    await page.locator("[data-testid=markdown-display] svg[aria-roledescription=gantt]").first()
      .screenshot({ path: shot("mermaid-chart") });
    result.markdown.chartScreenshot = shot("mermaid-chart");
  }
  if (result.markdown.timeSplit.pie.slices) {
    await page.locator("[data-testid=markdown-display] svg[aria-roledescription=pie]").first()
      .screenshot({ path: shot("time-split-chart") });
    result.markdown.timeSplit.screenshot = shot("time-split-chart");
  }

  time("markdown");

  // 3. The table artifact's page: Prefect's data table, one row per task.
  step = "table";
  await page.goto(`${spec.uiBase}/artifacts/artifact/${spec.table.id}`);
  const readTable = () => {
    const text = (element) => element.textContent.replace(/\s+/g, " ").trim();
    const table = document.querySelector("table[data-slot=table]");
    if (!table || !table.querySelector("tbody tr td")) return null;
    const columns = [...table.querySelectorAll("thead th")].map(text);
    const rows = [...table.querySelectorAll("tbody tr")]
      .map((tr) => [...tr.querySelectorAll("td")].map(text));
    const task = columns.indexOf("task");
    return { url: location.href, columns, rows, taskCells: rows.map((cells) => cells[task]) };
  };
  result.table = await read(readTable);
  await page.screenshot({ path: shot("table-artifact"), fullPage: true });
  result.table.screenshot = shot("table-artifact");
  time("table");
  step = "done";
} catch (error) {
  result.error = `${step}: ${String(error?.message ?? error).split("\n")[0]}`;
  await page.screenshot({ path: shot(`${step}-failure`), fullPage: true }).catch(() => {});
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
result.timingsMs.total = Date.now() - started;
result.blocked = [...new Set(result.blocked)];
console.log(JSON.stringify(result));
process.exit(result.error ? 1 : 0);
