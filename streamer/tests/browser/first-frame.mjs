// One headless Chromium, kept open, that opens each player URL read from stdin (one per line)
// in a fresh page and reports, as a JSON line on stdout, the wall-clock time (ms since the epoch)
// at which the first frame was decoded. `vdi bench-startup` drives it, so the browser's own
// start is not counted in any session's time to desktop. The session proxy's certificate is the
// local cluster's CA, which the browser does not trust: certificate errors are ignored.
import { createInterface } from "node:readline";
import { launchChromium } from "./chromium.mjs";

const out = (o) => console.log(JSON.stringify(o));
const browser = await launchChromium();
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 720 } });
out({ event: "ready" });
for await (const url of createInterface({ input: process.stdin })) {
  if (!url.trim()) continue;
  const page = await context.newPage();
  const opened = Date.now();
  try {
    await page.goto(url);
    await page.waitForFunction(() => window.vdi && window.vdi.state.framesDecoded > 0, null, { timeout: 30000, polling: 10 });
    out({ event: "first-frame", opened, at: Date.now() });
  } catch (e) {
    out({ event: "failed", opened, error: String(e) });
  } finally {
    await page.close();
  }
}
await browser.close();
