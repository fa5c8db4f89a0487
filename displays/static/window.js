// The window screen (窗口屏): one window's view from its feed.
import { formatter, openFeed, showState } from "./feed.js";
import { openDeviceLink } from "/static/devices/devicelink.js";

const settings = JSON.parse(document.getElementById("settings").textContent);
const $ = (id) => document.getElementById(id);
const clock = formatter(settings.timezone, { hour: "2-digit", minute: "2-digit" });

// What the big line says in each state of the window.
const LABELS = {
  calling: ["请到本窗口办理", "Now calling"],
  serving: ["正在办理", "Now serving"],
  open: ["等待叫号", "Ready for the next number"],
  paused: ["暂停服务", "Paused"],
  closed: ["窗口已关闭", "Window closed"],
};

/** Window deltas replace whole top-level keys. */
const apply = (view, changes) => ({ ...view, ...changes });

function bilingual(target, zh, en) {
  const span = document.createElement("span");
  span.lang = "en";
  span.textContent = en;
  target.replaceChildren(zh, " ", span);
}

function render(view) {
  const body = document.body;
  const state = view.state;
  for (const name of Object.keys(LABELS)) body.classList.toggle(`state-${name}`, name === state);
  body.dataset.state = state;
  $("window-name").textContent = view.window.name;
  $("window-name-en").textContent = view.window.name_en;

  const staff = view.staff;
  $("staff").hidden = staff === null || view.state === "closed";
  $("staff-name").textContent = staff?.name ?? "";
  $("staff-name").hidden = !staff?.name;
  $("staff-no").textContent = staff?.staff_no ?? "—";

  const [zh, en] = LABELS[state] ?? [state, state];
  bilingual($("label"), zh, en);
  $("number").textContent = view.ticket?.number ?? "";
  if (view.ticket) bilingual($("category"), view.ticket.category_name, view.ticket.category_name_en);
  else $("category").replaceChildren();
  const reason = view.state === "paused" ? view.pause_reason : null;
  if (reason) bilingual($("reason"), reason.name, reason.name_en);
  else $("reason").replaceChildren();
}

// A screen opened with its device token (?token=) keeps its health too: the hall records it
// online and offline.
const screenToken = new URLSearchParams(location.search).get("token");
if (screenToken) openDeviceLink(settings.hall, screenToken, { agent: "screen-page/1" });
const feed = openFeed(settings.feed, {
  apply,
  onFrame: ({ view }) => render(view),
  onState: showState,
});

function tick() {
  $("clock-time").textContent = clock.format(feed.serverNow());
}
tick();
setInterval(tick, 1000);
