// The hall screen (综合屏): the hall view from its feed, the newest call large, announcements.
import { formatter, openFeed, replaceById, showState } from "./feed.js";
import { openDeviceLink } from "/static/devices/devicelink.js";
import { Announcer } from "./announcer.js";

const settings = JSON.parse(document.getElementById("settings").textContent);
const $ = (id) => document.getElementById(id);
const RECENT_MS = 60000; // calls older than this (by the server's clock) are not spoken

const STATES = {
  open: ["空闲", "Open"],
  calling: ["叫号", "Calling"],
  serving: ["办理中", "Serving"],
  paused: ["暂停", "Paused"],
  closed: ["关闭", "Closed"],
};

const clockTime = formatter(settings.timezone, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const clockDate = formatter(settings.timezone, { year: "numeric", month: "long", day: "numeric", weekday: "long" });
const callTime = formatter(settings.timezone, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

const key = (call) => `${call.version}/${call.number}/${call.window}`;

/** The hall delta rules: new calls go in front (oldest first, so the newest ends up first); a new
 * day starts an empty list. */
function apply(view, changes) {
  const next = { ...view };
  const earlier = "day" in changes && changes.day !== view.day ? [] : view.calls;
  next.calls = earlier;
  for (const [name, value] of Object.entries(changes)) {
    if (name === "calls") {
      next.calls = [...value.slice().reverse(), ...earlier].slice(0, settings.calls);
    } else if (name === "queues" || name === "zones" || name === "windows") {
      next[name] = replaceById(view[name], value);
    } else {
      next[name] = value;
    }
  }
  return next;
}

// What the hero shows: the call being announced, else the newest; highlighted while announced
// and for highlight_seconds at least.
let shown = null;
let highlightUntil = 0;
let announcing = null;
let timer = null;

function highlight(call) {
  const seconds = feed.view?.highlight_seconds ?? 8;
  shown = call;
  highlightUntil = performance.now() + seconds * 1000;
  clearTimeout(timer);
  timer = setTimeout(renderHero, seconds * 1000 + 50);
  renderHero();
}

function renderHero() {
  const fresh = announcing !== null || performance.now() < highlightUntil;
  const call = announcing ?? (fresh ? shown : null) ?? feed.view?.calls[0] ?? null;
  const hero = $("hero");
  hero.querySelector(".hero-empty").hidden = call !== null;
  hero.querySelector(".hero-call").hidden = call === null;
  hero.classList.toggle("highlight", call !== null && fresh);
  if (call === null) return;
  hero.dataset.call = key(call);
  $("hero-number").textContent = call.number;
  $("hero-window").textContent = call.window_name;
  $("hero-zh").textContent = `请 ${call.number} 号到 ${call.window_name}`;
  $("hero-en").textContent = `${call.number} → ${call.window_name_en}`;
  $("hero-recall").hidden = !call.recall;
  $("hero-category").textContent = `${call.category_name} · ${call.category_name_en}`;
  for (const li of $("calls").children) li.classList.toggle("current", li.dataset.call === key(call));
  fitHero();
}

// Shrink the call's lines until they fit the hero: window names differ in length from hall to
// hall ("16号窗口" is a third wider than "1号窗口"), and so do category names.
function fitHero() {
  const hero = $("hero");
  const style = getComputedStyle(hero);
  const box = hero.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  for (const line of hero.querySelectorAll(".hero-call > p")) {
    line.style.removeProperty("font-size");
    const width = Math.max(line.scrollWidth, line.getBoundingClientRect().width);
    if (width > box) {
      const size = parseFloat(getComputedStyle(line).fontSize);
      line.style.fontSize = `${Math.floor((size * box * 0.98) / width)}px`;
    }
  }
}

const announcer = new Announcer($("announcer"), {
  onStart(call) {
    announcing = call;
    highlight(call);
  },
  onEnd() {
    announcing = null;
    renderHero();
  },
  onBlocked(blocked) {
    $("sound").hidden = !blocked;
  },
  isRecent: (call) => Math.abs(feed.serverNow() - Date.parse(call.at)) <= RECENT_MS,
});
$("enable-sound").addEventListener("click", () => announcer.unblock());

function render(view) {
  $("title").textContent = view.hall.title || view.hall.name;
  $("title-en").textContent = view.hall.title_en || view.hall.name_en;
  renderCalls(view.calls);
  renderQueues(view);
  renderWindows(view.windows);
  renderNotice(view.notice);
  renderHero();
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function renderCalls(calls) {
  const list = $("calls");
  list.style.gridTemplateRows = `repeat(${Math.ceil(settings.calls / 2)}, 1fr)`;
  list.replaceChildren(
    ...calls.map((call) => {
      const where = el("span", { className: "where" }, call.window_name, el("small", { lang: "en" }, call.window_name_en));
      const li = el("li", {}, el("span", { className: "number" }, call.number), where);
      const time = el("time", { className: "dated", dateTime: call.at }, callTime.format(new Date(call.at)));
      if (call.recall) time.prepend(el("span", { className: "recall" }, "重呼"), " ");
      li.append(time);
      li.dataset.call = key(call);
      return li;
    }),
  );
}

function renderQueues(view) {
  $("zones").replaceChildren(
    ...view.zones.map((zone) => {
      const li = el("li", { className: "dated", title: zone.name_en },
        el("span", {}, zone.name), el("b", {}, String(zone.waiting)));
      li.dataset.zone = zone.id;
      return li;
    }),
  );
  // Services grouped by zone, in the zones' order; a zone the screen leaves out, its services too.
  const shown = view.zones.map((zone) => zone.id);
  const queues = view.queues
    .filter((queue) => shown.includes(queue.zone))
    .sort((a, b) => shown.indexOf(a.zone) - shown.indexOf(b.zone));
  const list = $("queues");
  list.replaceChildren(
    ...queues.map((queue) => {
      const li = el("li", { className: "dated" },
        el("span", { className: "name" }, el("span", { className: "prefix" }, queue.prefix), queue.name),
        el("span", { className: "waiting" }, String(queue.waiting), el("small", {}, "等候 waiting")),
        el("span", { className: "name-en", lang: "en" }, queue.name_en),
        el("span", { className: "next" }, ...queue.next.map((n) => el("span", {}, n))),
      );
      li.dataset.queue = queue.id;
      return li;
    }),
  );
  const cols = Math.min(queues.length, Math.max(3, Math.ceil(queues.length / 3)));
  list.style.setProperty("--cols", String(Math.max(cols, 1)));
  list.style.setProperty("--rows", String(Math.max(1, Math.ceil(queues.length / Math.max(cols, 1)))));
}

function renderWindows(windows) {
  $("windows").replaceChildren(
    ...windows.map((window) => {
      const [zh, en] = STATES[window.state] ?? [window.state, window.state];
      const li = el("li", { className: `${window.state} dated`, title: window.name_en });
      li.dataset.window = window.id;
      li.append(el("span", { className: "name" }, window.name));
      li.append(window.number
        ? el("span", { className: "ticket" }, window.number)
        : el("span", { className: "state" }, zh, el("small", { lang: "en" }, en)));
      return li;
    }),
  );
}

function renderNotice(notice) {
  const text = [notice?.text, notice?.text_en].filter(Boolean).join("　·　");
  $("notice").hidden = !text;
  const span = $("notice-text");
  if (span.textContent === text) return; // restarting the scroll on every delta would jerk
  span.textContent = text;
  // The same speed whatever the length: about 8 characters' width a second.
  span.parentElement.style.setProperty("--ticker-seconds", `${Math.max(12, text.length / 4)}s`);
}

function tick() {
  const now = feed.serverNow();
  $("clock-time").textContent = clockTime.format(now);
  $("clock-date").textContent = clockDate.format(now);
}

// A screen opened with its device token (?token=) keeps its health too: the hall records it
// online and offline.
const screenToken = new URLSearchParams(location.search).get("token");
if (screenToken) openDeviceLink(settings.hall, screenToken, { agent: "screen-page/1" });
const feed = openFeed(settings.feed, {
  apply,
  onFrame({ kind, view, frame }) {
    render(view);
    // Only calls that arrive as news are spoken: a full view (first connect, resync) is the
    // present state, not calls to read out again.
    if (kind !== "delta" || !frame.changes.calls) return;
    const spoken = frame.changes.calls.filter((call) => Math.abs(Date.parse(frame.now) - Date.parse(call.at)) <= RECENT_MS);
    for (const call of spoken) announcer.enqueue(call);
    // Not being spoken (sound blocked, or old news): shown large all the same.
    if (announcing === null) highlight(frame.changes.calls.at(-1));
  },
  onState(state, detail) {
    showState(state, detail);
  },
});
tick();
setInterval(tick, 250);
// Text is measured to fit the hero: again once the CJK font is in, and when the window resizes.
document.fonts.ready.then(renderHero);
addEventListener("resize", renderHero);
