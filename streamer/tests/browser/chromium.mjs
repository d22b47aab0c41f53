// The headless Chromium every browser script of the repository drives: the system's (no browser
// download), with WebRTC allowed on loopback and nothing contacting the network on its own.
import { chromium } from "playwright-core";

export const CHROMIUM_ARGS = [
  "--allow-loopback-in-peer-connection", "--use-fake-ui-for-media-stream", "--no-sandbox",
  "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync",
];

/** Launches it (`$CHROMIUM`, else /usr/bin/chromium). */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
}
