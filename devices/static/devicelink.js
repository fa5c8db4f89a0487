// A device page's link to its hall (/ws/halls/{hall}/devices), so the hall knows the kiosk, pad or
// caller is there: hello with the page's device token, a heartbeat every `heartbeat` seconds (the
// welcome says how often), reconnect with backoff. The hall records online and offline; the page
// may show the link's state (a small dot). Pages get no jobs on this link: it only keeps health.
//
// Frames: page → hall {type: "hello", token, agent}, {type: "heartbeat"}; hall → page
// {type: "welcome", device, kind, window, heartbeat}, {type: "heartbeat"}, {type: "error", error,
// message} (then a close).

const SILENT_BEATS = 3; // heartbeats missed before the link counts as dead (both ends agree)
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10000;
const SLOW_DELAY_MS = 60000; // after a refusal: retrying soon would not help

// Close codes after which the page's token or the hall must change first; the page says why.
export const REFUSED = {
  4401: ["设备令牌无效", "This page's device token is not valid here"],
  4403: ["此设备不能连接", "This device may not connect"],
  4404: ["没有此大厅", "No such hall on this server"],
};
// Another page (or tab) with the same device token took over the link.
export const REPLACED = 4409;

/**
 * Keep the device of `token` connected to hall `hall`.
 * - onState(state, detail) on every change: "connecting" (before the first welcome), "online",
 *   "offline" (detail: {code}; it reconnects by itself) or "refused" (detail: {code, zh, en,
 *   message}; it retries slowly).
 * Returns {state, device (the welcome: {device, kind, window}, or null), close()}.
 */
export function openDeviceLink(hall, token, { agent = "device-page/1", onState } = {}) {
  let socket = null;
  let state = null;
  let device = null;
  let attempt = 0;
  let retry = null;
  let beat = null;
  let lastHeard = 0;
  let closed = false;

  function setState(next, detail = null) {
    if (next === state && next !== "refused") return;
    state = next;
    onState?.(next, detail);
  }

  function connect() {
    retry = null;
    if (closed) return;
    if (state === null) setState("connecting");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws/halls/${encodeURIComponent(hall)}/devices`);
    socket = ws;
    let refusal = null;
    ws.onopen = () => {
      lastHeard = performance.now();
      ws.send(JSON.stringify({ type: "hello", token, agent }));
    };
    ws.onmessage = (event) => {
      if (ws !== socket) return;
      lastHeard = performance.now();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return drop(ws);
      }
      if (frame.type === "welcome") {
        device = { device: frame.device, kind: frame.kind, window: frame.window };
        attempt = 0;
        startBeats(ws, frame.heartbeat);
        setState("online");
      } else if (frame.type === "error") {
        refusal = frame;
      }
      // Heartbeats only show the hall is there; jobs never come to a page.
    };
    ws.onclose = (event) => {
      if (ws !== socket) return;
      socket = null;
      stopBeats();
      if (closed) return;
      const refused = REFUSED[event.code];
      if (refused) {
        setState("refused", { code: event.code, zh: refused[0], en: refused[1], message: refusal?.message });
        schedule(SLOW_DELAY_MS);
      } else {
        setState("offline", { code: event.code });
        schedule(event.code === REPLACED ? SLOW_DELAY_MS : null);
      }
    };
  }

  function startBeats(ws, seconds) {
    stopBeats();
    const every = Math.max(0.1, Number(seconds) || 10) * 1000;
    beat = setInterval(() => {
      // A connection that went silent (a cable pulled, a server frozen) never closes by itself.
      if (performance.now() - lastHeard > SILENT_BEATS * every) return drop(ws);
      if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"heartbeat"}');
    }, every);
  }

  function stopBeats() {
    if (beat !== null) clearInterval(beat);
    beat = null;
  }

  function drop(ws) {
    if (ws !== socket) return;
    socket = null;
    stopBeats();
    ws.onclose = null;
    ws.close();
    if (closed) return;
    setState("offline", { code: null });
    schedule(null);
  }

  // Full jitter under a ceiling that doubles to 10 s, as the agents do (devices/session.py), so
  // a hall's pages do not all knock at the same instant when its server comes back.
  function schedule(delayMs) {
    if (retry !== null || closed) return;
    const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.min(attempt, 5));
    attempt += 1;
    retry = setTimeout(connect, delayMs ?? Math.random() * ceiling);
  }

  connect();
  return {
    get state() {
      return state;
    },
    get device() {
      return device;
    },
    close() {
      closed = true;
      stopBeats();
      if (retry !== null) clearTimeout(retry);
      socket?.close();
    },
  };
}
