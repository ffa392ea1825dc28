// node render_artifact.mjs ARTIFACT.md SCREENSHOT.png
// Bundles app.jsx, renders the markdown in headless Chromium (Debian's), waits
// for mermaid, saves a screenshot and prints what rendered as JSON.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const [markdownPath, screenshotPath] = process.argv.slice(2);
const markdown = readFileSync(markdownPath, "utf8");

const bundle = await build({
  entryPoints: [join(here, "app.jsx")], bundle: true, write: false, format: "iife",
  loader: { ".jsx": "jsx" }, jsx: "automatic", define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "error",
});
const page_html = `<!doctype html><html><head><meta charset="utf-8"><style>
  body { font-family: sans-serif; margin: 24px; max-width: 1200px; }
  table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 4px 8px; }
</style></head><body><div id="root"></div>
<script>window.ARTIFACT_MARKDOWN = ${JSON.stringify(markdown)};</script>
<script>${bundle.outputFiles[0].text.replace(/<\/script/g, "<\\/script")}</script></body></html>`;
const htmlPath = resolve(screenshotPath.replace(/\.png$/, ".html"));
writeFileSync(htmlPath, page_html);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto("file://" + htmlPath);
  await page.waitForSelector("body[data-rendered=true]", { timeout: 30000 });
  const result = await page.evaluate(() => ({
    tables: document.querySelectorAll("table").length,
    tableRows: document.querySelectorAll("table tbody tr").length,
    mermaidSvgs: document.querySelectorAll(".mermaid svg").length,
    mermaidErrors: [...document.querySelectorAll(".mermaid")].map((e) => e.textContent)
      .filter((t) => t.startsWith("mermaid error")),
    headings: [...document.querySelectorAll("h2, h3")].map((h) => h.textContent),
    codeBlocks: document.querySelectorAll("pre code").length,
  }));
  await page.screenshot({ path: screenshotPath, fullPage: true });
  console.log(JSON.stringify({ ...result, pageErrors: errors }));
} finally {
  await browser.close();
}
