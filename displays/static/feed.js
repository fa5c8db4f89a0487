// The live feed of one screen, shared by every page: connect, keep the view and its version,
// resume with ?after=, reconnect by itself, and say whether what is shown is current.
//
// Frames (server → page): {type: "view", version, now, view}, {type: "delta", from, version, now,
// changes}, {type: "ping", version, now}, {type: "stale", version, now} (the server cannot reach
// the hall's journal: what it shows may be out of date, until the next ping or delta),
// {type: "error", error, message} (then a close).

const STALE_AFTER_MS = 25000; // the server pings every 10 s: 25 s of silence is a dead link
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10000;

// Close codes after which retrying soon will not help; the page says why (and retries slowly, so
// that a screen recovers by itself once its token or the hall file is fixed).
export const REFUSED = {
  4401: ["此屏幕需要有效的设备令牌", "This screen needs a valid device token (?token=…)"],
  4403: ["此设备令牌不能打开本屏幕", "This device token is not for this screen"],
  4404: ["没有此大厅或窗口", "No such hall or window on this server"],
};

/**
 * Open the feed at `path` (e.g. "/ws/halls/demo-county/screens/hall").
 * - apply(view, changes) → the new view (the page knows its kind's delta rules);
 * - onFrame({kind: "view"|"delta", view, frame}) after each view or delta is applied;
 * - onState(state, detail) on every change of state: "connecting" (nothing received yet), "live",
 *   "stale" (disconnected, or no frame for 25 s: the view may be out of date) or "refused"
 *   (detail: {code, zh, en}).
 * The page's ?token= goes with every connection, or `token` if given (a device page's own).
 */
export function openFeed(path, { apply, onFrame, onState, token = null }) {
  token ??= new URLSearchParams(location.search).get("token");
  let socket = null;
  let view = null;
  let version = null;
  let state = null;
  let attempt = 0;
  let lastFrameAt = 0;
  let serverOffsetMs = 0; // server clock − local clock, from the last frame's `now`
  let retry = null;
  let closed = false;

  function setState(next, detail = null) {
    if (next === state && next !== "refused") return;
    state = next;
    onState?.(next, detail);
  }

  function url() {
    const query = new URLSearchParams();
    if (version !== null) query.set("after", String(version));
    if (token) query.set("token", token);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const q = query.toString();
    return `${scheme}//${location.host}${path}${q ? "?" + q : ""}`;
  }

  function connect() {
    retry = null;
    if (closed) return;
    if (state === null) setState("connecting");
    const ws = new WebSocket(url());
    socket = ws;
    let refusal = null;
    ws.onmessage = (event) => {
      if (ws !== socket) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return resync(ws);
      }
      received(ws, frame);
      if (frame.type === "error") refusal = frame;
    };
    ws.onclose = (event) => {
      if (ws !== socket) return;
      socket = null;
      if (closed) return;
      const refused = REFUSED[event.code];
      if (refused) {
        setState("refused", { code: event.code, zh: refused[0], en: refused[1], message: refusal?.message });
      } else {
        if (event.code === 4400) version = null; // our position was refused: start afresh
        if (state !== "connecting") setState("stale");
      }
      schedule();
    };
  }

  function received(ws, frame) {
    lastFrameAt = performance.now();
    if (frame.now) serverOffsetMs = Date.parse(frame.now) - Date.now();
    if (frame.type === "view") {
      view = frame.view;
      version = frame.version;
      attempt = 0;
      setState("live");
      onFrame?.({ kind: "view", view, frame });
    } else if (frame.type === "delta") {
      if (view === null || frame.from !== version) return resync(ws);
      view = apply(view, frame.changes);
      version = frame.version;
      attempt = 0;
      setState("live");
      onFrame?.({ kind: "delta", view, frame });
    } else if (frame.type === "ping") {
      // A ping names the hall's version: ahead of ours means a delta went missing.
      if (view === null || frame.version !== version) return resync(ws);
      attempt = 0;
      setState("live");
    } else if (frame.type === "stale") {
      setState("stale");
    }
  }

  // Out of step: reconnect from our own version (the server sends what we lack), at once the
  // first time, with backoff if it keeps happening.
  function resync(ws) {
    socket = null;
    ws.onclose = null;
    ws.close();
    if (closed) return;
    if (attempt === 0) {
      attempt = 1;
      connect();
    } else {
      schedule();
    }
  }

  // Exponential backoff with jitter, so that a hall's screens do not all knock at the same instant
  // when its server comes back.
  function schedule() {
    if (retry !== null) return;
    const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** attempt);
    attempt += 1;
    retry = setTimeout(connect, ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  // A connection that went silent (a cable pulled, a server frozen) never closes by itself.
  const watchdog = setInterval(() => {
    if (state === "live" && performance.now() - lastFrameAt > STALE_AFTER_MS) {
      setState("stale");
      if (socket) {
        const ws = socket;
        socket = null;
        ws.onclose = null;
        ws.close();
      }
      schedule();
    }
  }, 1000);

  connect();
  return {
    get state() {
      return state;
    },
    get version() {
      return version;
    },
    get view() {
      return view;
    },
    /** The server's time now, as far as the last frame tells (local clock until then). */
    serverNow() {
      return new Date(Date.now() + serverOffsetMs);
    },
    close() {
      closed = true;
      clearInterval(watchdog);
      if (retry !== null) clearTimeout(retry);
      socket?.close();
    },
  };
}

/** Replace the items of `items` whose id is in `changed` (and append new ones). */
export function replaceById(items, changed) {
  const byId = new Map(changed.map((item) => [item.id, item]));
  const out = items.map((item) => byId.get(item.id) ?? item);
  const known = new Set(items.map((item) => item.id));
  for (const item of changed) if (!known.has(item.id)) out.push(item);
  return out;
}

/** Mark the page with the feed's state (body classes `feed-live` …) and show a refusal. */
export function showState(state, detail) {
  const body = document.body;
  for (const name of ["connecting", "live", "stale", "refused"]) {
    body.classList.toggle(`feed-${name}`, name === state);
  }
  const refusal = document.getElementById("refusal");
  if (refusal) {
    refusal.hidden = state !== "refused";
    if (state === "refused") {
      refusal.querySelector(".zh").textContent = detail.zh;
      refusal.querySelector(".en").textContent = detail.en;
      refusal.querySelector(".code").textContent = `(${detail.code})`;
    }
  }
}

/** A clock in the hall's time zone, on the server's time. */
export function formatter(timezone, options) {
  return new Intl.DateTimeFormat("zh-CN", { timeZone: timezone, hourCycle: "h23", ...options });
}
