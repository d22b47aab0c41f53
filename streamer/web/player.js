// The VDI web player: signalling over WebSocket, the stream in a <video>, input over the
// "input" data channel (keys, pointer absolute or relative under pointer lock, buttons, wheel),
// a statistics overlay, full screen, and reconnection. The token comes from the URL fragment
// (#token=...) so it never reaches server logs; ?relay=1 forces TURN relay (tests, strict NAT).

const params = new URLSearchParams(location.search);
const fragment = new URLSearchParams(location.hash.slice(1));
const token = fragment.get("token") || params.get("token") || "";
const relayOnly = params.get("relay") === "1";
const video = document.getElementById("video");
const overlay = document.getElementById("overlay");
const statusLine = document.getElementById("status");

const state = {
  role: null, connected: false, error: null, connects: 0,
  fps: 0, framesDecoded: 0, framesDropped: 0, packetsLost: 0, bitrateKbps: 0, rttMs: null,
  latencyMs: null, candidateType: null, codec: null, clipboard: null, resizeError: null,
};
window.vdi = {
  state, send: (ev) => send(ev), disconnect: () => ws && ws.close(),
  setClipboard: (text) => send({ type: "clipboard", text }),
  resize: (width, height) => send({ type: "resize", width, height }),
};

// ?fit=1: the desktop follows the browser window's size.
if (params.get("fit") === "1") {
  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(() => window.vdi.resize(window.innerWidth, window.innerHeight), 500);
  });
}

let ws = null, pc = null, channel = null, lastBytes = 0, lastAt = 0, stopped = false;

function show(msg) { statusLine.textContent = msg; }

function send(ev) {
  if (channel && channel.readyState === "open" && state.role === "controller") {
    channel.send(JSON.stringify(ev));
    return true;
  }
  return false;
}

function connect() {
  state.connects += 1;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const base = location.pathname.replace(/[^/]*$/, "");
  ws = new WebSocket(`${scheme}://${location.host}${base}ws`);
  ws.onopen = () => ws.send(JSON.stringify({ type: "hello", token }));
  ws.onmessage = async (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "welcome") {
      // A second welcome means the streamer restarted its media (e.g. an encoder fallback).
      if (pc) { pc.close(); pc = null; channel = null; }
      state.role = m.role;
      pc = new RTCPeerConnection({ iceServers: m.iceServers, iceTransportPolicy: relayOnly ? "relay" : "all" });
      pc.ontrack = (t) => { video.srcObject = t.streams[0] || new MediaStream([t.track]); };
      pc.ondatachannel = (d) => {
        channel = d.channel;
        channel.onmessage = (e) => {
          const m = JSON.parse(e.data);
          if (m.type === "resize-error") state.resizeError = m.message;
          if (m.type === "clipboard" && typeof m.text === "string") {
            state.clipboard = m.text;
            navigator.clipboard?.writeText(m.text).catch(() => {}); // needs focus and permission
          }
        };
      };
      pc.onicecandidate = (c) => {
        if (c.candidate) ws.send(JSON.stringify({ type: "ice", candidate: c.candidate.candidate, sdpMLineIndex: c.candidate.sdpMLineIndex || 0 }));
      };
      pc.onconnectionstatechange = () => {
        state.connected = pc.connectionState === "connected";
        show(`${state.role} · ${pc.connectionState}`);
        if (pc.connectionState === "failed") ws.close();
      };
    } else if (m.type === "offer") {
      await pc.setRemoteDescription({ type: "offer", sdp: m.sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      ws.send(JSON.stringify({ type: "answer", sdp: answer.sdp }));
    } else if (m.type === "ice") {
      try { await pc.addIceCandidate({ candidate: m.candidate, sdpMLineIndex: m.sdpMLineIndex }); } catch (err) { console.warn(err); }
    } else if (m.type === "error") {
      state.error = m.code;
      show(`error: ${m.code}: ${m.message}`);
      if (m.code === "unauthorized" || m.code === "busy") stopped = true;
    }
  };
  ws.onclose = () => {
    state.connected = false;
    if (pc) { pc.close(); pc = null; }
    channel = null;
    if (!stopped) setTimeout(connect, 1000); // reconnect
  };
}

// Input.
video.addEventListener("click", () => { video.focus(); if (!document.pointerLockElement && params.get("lock") === "1") video.requestPointerLock(); });
function share(e) {
  const r = video.getBoundingClientRect();
  return { x: Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), y: Math.min(1, Math.max(0, (e.clientY - r.top) / r.height)) };
}
video.addEventListener("mousemove", (e) => {
  if (document.pointerLockElement === video) send({ type: "pointer-rel", dx: e.movementX, dy: e.movementY });
  else send({ type: "pointer-abs", ...share(e) });
});
const buttonOf = (e) => ({ 0: 1, 1: 2, 2: 3 })[e.button] || 1;
video.addEventListener("mousedown", (e) => { e.preventDefault(); send({ type: "button", button: buttonOf(e), down: true }); });
video.addEventListener("mouseup", (e) => { e.preventDefault(); send({ type: "button", button: buttonOf(e), down: false }); });
video.addEventListener("contextmenu", (e) => e.preventDefault());
video.addEventListener("wheel", (e) => { e.preventDefault(); send({ type: "wheel", dx: Math.sign(e.deltaX), dy: Math.sign(e.deltaY) }); }, { passive: false });
for (const [type, down] of [["keydown", true], ["keyup", false]]) {
  window.addEventListener(type, (e) => { if (send({ type: "key", key: e.key, down })) e.preventDefault(); });
}

// Clipboard: what the user pastes into the page becomes the desktop's clipboard.
window.addEventListener("paste", (e) => {
  const text = e.clipboardData && e.clipboardData.getData("text/plain");
  if (text) window.vdi.setClipboard(text);
});

// Controls.
document.getElementById("fullscreen").onclick = () => document.getElementById("stage").requestFullscreen();
document.getElementById("stats-toggle").onclick = () => { overlay.hidden = !overlay.hidden; };

// Statistics every second.
setInterval(async () => {
  if (!pc) { overlay.textContent = "connecting…"; return; }
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      state.fps = s.framesPerSecond || 0;
      state.framesDecoded = s.framesDecoded || 0;
      state.framesDropped = s.framesDropped || 0;
      state.packetsLost = s.packetsLost || 0;
      const now = s.timestamp;
      if (lastAt) state.bitrateKbps = Math.round(((s.bytesReceived - lastBytes) * 8) / (now - lastAt));
      lastBytes = s.bytesReceived; lastAt = now;
      if (s.jitterBufferEmittedCount) state.latencyMs = Math.round((1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount);
      const codec = stats.get(s.codecId); if (codec) state.codec = codec.mimeType;
    }
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
  });
  if (pair) {
    state.rttMs = pair.currentRoundTripTime != null ? Math.round(pair.currentRoundTripTime * 1000) : null;
    const local = stats.get(pair.localCandidateId); if (local) state.candidateType = local.candidateType;
  }
  if (channel && channel.readyState === "open") {
    channel.send(JSON.stringify({ type: "stats", fps: state.fps, jitterBufferMs: state.latencyMs || 0, rttMs: state.rttMs || 0 }));
  }
  overlay.textContent = `${state.codec || "?"}  ${state.fps} fps  ${state.bitrateKbps} kbit/s\nRTT ${state.rttMs ?? "?"} ms  buffer ${state.latencyMs ?? "?"} ms  lost ${state.packetsLost}\n${state.role || ""} via ${state.candidateType || "?"}`;
}, 1000);

connect();
