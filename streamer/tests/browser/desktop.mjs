// Opens a session's URL as a user would (through the platform's HTTPS session proxy, whose
// certificate is the local cluster's own CA: not trusted by the browser, so errors on it are
// ignored) and reports what it saw as JSON lines on stdout. Usage:
//   node desktop.mjs <url> type <text>   wait for decoded frames, click the desktop, type <text>
//                                        and Enter (letters, digits and spaces only), report stats
//   node desktop.mjs <url> refused       expect the streamer to refuse; report the error code
// The platform's end-to-end test (host/cli/tests/local_desktop.rs) checks the X side itself.
import { launchChromium } from "./chromium.mjs";

const [url, scenario = "type", text = ""] = process.argv.slice(2);
const out = (o) => console.log(JSON.stringify(o));
const browser = await launchChromium();
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") out({ event: "console", text: m.text() }); });
  const started = Date.now();
  await page.goto(url);
  if (scenario === "refused") {
    await page.waitForFunction(() => window.vdi && window.vdi.state.error, null, { timeout: 15000 });
    out({ event: "refused", code: await page.evaluate(() => window.vdi.state.error) });
  } else {
    await page.waitForFunction(() => window.vdi && window.vdi.state.framesDecoded > 0, null, { timeout: 30000, polling: 20 });
    out({ event: "first-frame", ms: Date.now() - started });
    // The input channel opens with the media; a pointer message goes through once it is up.
    await page.waitForFunction(() => window.vdi.send({ type: "pointer-abs", x: 0, y: 0 }), null, { timeout: 10000 });
    const box = await page.locator("video").boundingBox();
    // The desktop runtime opens its terminal at the top left (+20+20, 100x30): click inside it.
    await page.mouse.click(box.x + box.width * 0.15, box.y + box.height * 0.15);
    await page.waitForTimeout(300);
    for (const ch of text) {
      await page.keyboard.press(ch === " " ? "Space" : ch);
      await page.waitForTimeout(30);
    }
    await page.keyboard.press("Enter");
    out({ event: "typed", text });
    await page.waitForTimeout(1000);
    const state = await page.evaluate(() => ({ ...window.vdi.state }));
    out({ event: "stats", ...state });
  }
} catch (e) {
  out({ event: "failed", error: String(e) });
  process.exitCode = 1;
} finally {
  await browser.close();
}
