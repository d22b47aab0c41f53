// Drives the streamer's web player in headless Chromium and reports what it saw as JSON lines
// on stdout. Usage: node drive.mjs <player-url> <scenario>
//   watch   wait for the first frame, then report stats after 3 s
//   input   also move the pointer to the video's centre and hold the "a" key for 1.5 s
//   refused expect the player to be refused; report the error code
//   shared  a second, view-only page joins the first's stream; report both pages' frame rates
// The Rust tests (streamer/tests/browser.rs) start Xvfb, the streamer and this script, and check
// the X server's side themselves.
import { launchChromium } from "./chromium.mjs";

const [url, scenario = "watch"] = process.argv.slice(2);
const out = (o) => console.log(JSON.stringify(o));
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  page.on("console", (m) => { if (m.type() === "error") out({ event: "console", text: m.text() }); });
  const started = Date.now();
  await page.goto(url);
  if (scenario === "garbage") {
    // Malformed signalling from a page on the streamer's origin: each gets an error back.
    const replies = await page.evaluate(async () => {
      const ws = new WebSocket(`ws://${location.host}/ws`);
      await new Promise((r) => (ws.onopen = r));
      const got = [];
      ws.onmessage = (e) => got.push(JSON.parse(e.data));
      for (const m of ["{", "[1,2]", JSON.stringify({ type: "answer", sdp: "v=0" }), JSON.stringify({ type: "nope" })]) ws.send(m);
      await new Promise((r) => setTimeout(r, 500));
      return got;
    });
    out({ event: "replies", replies });
  } else if (scenario === "shared") {
    const playing = (p) => p.waitForFunction(() => window.vdi && window.vdi.state.framesDecoded > 0, null, { timeout: 30000, polling: 20 });
    await playing(page);
    const second = await browser.newPage({ viewport: { width: 640, height: 480 } });
    const joined = Date.now();
    await second.goto(url);
    await playing(second);
    out({ event: "both-playing", secondFirstFrameMs: Date.now() - joined });
    const pages = [page, second];
    const before = await Promise.all(pages.map((p) => p.evaluate(() => window.vdi.state.framesDecoded)));
    await page.waitForTimeout(3000);
    const after = await Promise.all(pages.map((p) => p.evaluate(() => ({ ...window.vdi.state }))));
    out({ event: "shared", roles: after.map((a) => a.role), fps: after.map((a, i) => (a.framesDecoded - before[i]) / 3) });
  } else if (scenario === "refused") {
    await page.waitForFunction(() => window.vdi && window.vdi.state.error, null, { timeout: 15000 });
    out({ event: "refused", code: await page.evaluate(() => window.vdi.state.error) });
  } else {
    await page.waitForFunction(() => window.vdi && window.vdi.state.framesDecoded > 0, null, { timeout: 30000, polling: 20 });
    out({ event: "first-frame", ms: Date.now() - started });
    if (scenario === "latency") {
      // Glass to glass: the drawer paints the wall clock (ms mod 2^32) as black/white blocks
      // along the top edge; each decoded frame is read back and compared with the time the
      // browser will show it (requestVideoFrameCallback's expectedDisplayTime).
      const seconds = Number(process.argv[4] || 10);
      const result = await page.evaluate(async ({ seconds, bits, block }) => {
        const video = document.getElementById("video");
        const canvas = document.createElement("canvas");
        canvas.width = bits * block; canvas.height = block;
        const ctx = canvas.getContext("2d", { willReadFrequently: true });
        const samples = []; let bad = 0;
        await new Promise((resolve) => {
          const end = performance.now() + seconds * 1000;
          const onFrame = (_now, meta) => {
            ctx.drawImage(video, 0, 0, canvas.width, canvas.height, 0, 0, canvas.width, canvas.height);
            const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            let t = 0;
            for (let i = 0; i < bits; i++) {
              const o = ((block >> 1) * canvas.width + i * block + (block >> 1)) * 4;
              t = t * 2 + ((data[o] + data[o + 1] + data[o + 2]) / 3 > 127 ? 1 : 0);
            }
            const shown = (performance.timeOrigin + meta.expectedDisplayTime) % 4294967296;
            let latency = shown - t; if (latency < -2147483648) latency += 4294967296;
            if (latency >= 0 && latency < 5000) samples.push(latency); else bad += 1;
            if (performance.now() < end) video.requestVideoFrameCallback(onFrame); else resolve();
          };
          video.requestVideoFrameCallback(onFrame);
        });
        samples.sort((a, b) => a - b);
        const q = (p) => samples.length ? samples[Math.min(samples.length - 1, Math.round((samples.length - 1) * p))] : null;
        return { samples: samples.length, bad, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1) };
      }, { seconds, bits: 32, block: 24 });
      out({ event: "latency", ...result });
    }
    if (scenario === "resize") {
      // Ask for 800x600; the stream comes back renegotiated at that size (or an error says why).
      await page.waitForFunction(() => window.vdi.resize(800, 600), null, { timeout: 10000 });
      await page.waitForFunction(() => {
        const v = document.getElementById("video");
        return window.vdi.state.resizeError || (v.videoWidth === 800 && v.videoHeight === 600);
      }, null, { timeout: 20000 });
      const size = await page.evaluate(() => {
        const v = document.getElementById("video");
        return { width: v.videoWidth, height: v.videoHeight, error: window.vdi.state.resizeError };
      });
      out({ event: "resized", ...size });
    }
    if (scenario === "reconnect") {
      await page.evaluate(() => window.vdi.disconnect());
      await page.waitForFunction(() => window.vdi.state.connects >= 2 && window.vdi.state.connected, null, { timeout: 20000 });
      const frames = await page.evaluate(() => window.vdi.state.framesDecoded);
      await page.waitForFunction((f) => window.vdi.state.framesDecoded > f || window.vdi.state.framesDecoded > 0, frames, { timeout: 20000 });
      out({ event: "reconnected", connects: await page.evaluate(() => window.vdi.state.connects) });
    }
    if (scenario === "input") {
      await page.waitForFunction(() => window.vdi.send({ type: "pointer-abs", x: 0, y: 0 }), null, { timeout: 10000 });
      const box = await page.locator("video").boundingBox();
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.waitForTimeout(300);
      out({ event: "pointer-moved" });
      await page.keyboard.down("a");
      out({ event: "key-down" });
      await page.waitForTimeout(1500);
      await page.keyboard.up("a");
      out({ event: "key-up" });
      await page.evaluate(() => window.vdi.setClipboard("hello from the browser"));
      await page.waitForTimeout(300);
      out({ event: "clipboard-set" });
      await page.waitForFunction(() => window.vdi.state.clipboard === "hello from X", null, { timeout: 10000 });
      out({ event: "clipboard-received" });
    }
    const before = await page.evaluate(() => ({ ...window.vdi.state }));
    await page.waitForTimeout(3000);
    const after = await page.evaluate(() => ({ ...window.vdi.state }));
    out({ event: "stats", ...after, fpsMeasured: (after.framesDecoded - before.framesDecoded) / 3 });
    if (scenario === "input") {
      // A key held while the connection drops must not stay down on the desktop.
      await page.keyboard.down("b");
      await page.waitForTimeout(500);
      out({ event: "b-down" });
      await page.evaluate(() => window.vdi.disconnect());
      await page.waitForTimeout(1000);
      out({ event: "disconnected-holding-b" });
      await page.keyboard.up("b");
    }
  }
} catch (e) {
  out({ event: "failed", error: String(e) });
  process.exitCode = 1;
} finally {
  await browser.close();
}
