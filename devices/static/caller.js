// The window caller (呼叫器): staff log in, then act on their window by button or single key.
// What it shows comes from the desk feed; what it does goes through the window routes, one
// Idempotency-Key per press, reused when the same press is retried after no answer.
import { formatter, openFeed, showState } from "/static/feed.js";
import { openDeviceLink } from "./devicelink.js";
import { deviceToken } from "./device-token.js";

const settings = JSON.parse(document.getElementById("settings").textContent);
const $ = (id) => document.getElementById(id);
const SESSION = `hall.caller.${settings.hall}.${settings.window}`;
const REQUEST_MS = 8000;
const INFO_MS = 6000;
const clock = formatter(settings.timezone, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const categories = new Map(settings.categories.map(([id, name, nameEn]) => [id, [name, nameEn]]));

// Each action: its key, the window states it makes sense in, and either the route it posts to or
// a chooser that asks first (digits pick).
const ACTIONS = {
  call: { key: "n", states: ["open"], path: "call-next" },
  recall: { key: "r", states: ["calling"], path: "recall" },
  start: { key: "s", states: ["calling"], path: "start" },
  finish: { key: "f", states: ["serving"], choose: chooseOutcome },
  noshow: { key: "x", states: ["calling"], path: "no-show" },
  transfer: { key: "t", states: ["calling", "serving"], choose: chooseTransfer },
  pause: { key: "p", states: ["open"], choose: choosePause },
  resume: { key: "c", states: ["paused"], path: "resume" },
  logout: { key: "l", states: ["open", "paused"], choose: confirmLogout },
};
const BY_KEY = new Map(Object.entries(ACTIONS).map(([name, action]) => [action.key, name]));

const STATES = {
  open: ["空闲", "Open"],
  calling: ["呼叫中", "Calling"],
  serving: ["办理中", "Serving"],
  paused: ["暂停", "Paused"],
  closed: ["未登录", "Closed"],
};

// What each refusal means to the person at the desk (codes of the API's error bodies).
const REFUSALS = {
  window_state: ["窗口当前状态不能执行此操作", "Not possible in the window's current state"],
  window_busy: [
    "窗口还有号码未处理：请先办结、转移或过号",
    "The window still holds a ticket: finish, transfer or mark it first",
  ],
  not_your_window: ["此窗口已由他人登录：请重新登录", "Someone else holds this window: log in again"],
  staff_elsewhere: (d) => [
    `您已在${d?.window ?? "其他"}号窗口登录：请先在那里退出`,
    `You are logged in at window ${d?.window ?? "another"}: log out there first`,
  ],
  window_not_open: ["窗口已关闭：请重新登录", "The window is closed: log in again"],
  unauthorized: ["登录已失效：请重新登录", "Your session has ended: log in again"],
  too_many_attempts: (d) => [
    `尝试次数过多：请 ${Math.ceil(d?.retry_after ?? 60)} 秒后再试`,
    `Too many attempts: try again in ${Math.ceil(d?.retry_after ?? 60)} s`,
  ],
  busy: ["系统繁忙：请稍后再试", "The hall is busy: try again in a moment"],
  staff_not_allowed: ["您不能在此窗口工作", "You may not work at this window"],
  forbidden: ["无权执行此操作", "You may not do this"],
  unknown_category: ["没有此业务", "No such service"],
  unknown_reason: ["没有此暂停原因", "No such pause reason"],
  unknown_window: ["没有此窗口", "No such window"],
};
// Refusals after which this page's login is no use: back to the login form.
const SIGNED_OUT = new Set(["unauthorized", "not_your_window", "window_not_open"]);
const RETRY = [
  "系统未应答，操作可能未完成：请再按一次重试（不会重复执行）",
  "The hall did not answer; it may not have been done: press again to retry (never done twice)",
];

let session = load(); // {token, username, restored}: the staff login kept by this browser
let seenOpen = false; // the feed has shown this window open since the login
let view = null; // the desk view, from the feed
let busy = false; // a press is being sent: no other until it is answered
let pending = null; // the last press that got no answer: {path, body, key}, to retry as it was
let chooser = null; // {options: [{label: [zh, en], pick}], typed}
let infoTimer = null;

// -- the login kept by the browser --------------------------------------------------------------

function load() {
  try {
    const kept = JSON.parse(localStorage.getItem(SESSION) ?? "null");
    return kept?.token ? { token: kept.token, username: kept.username, restored: true } : null;
  } catch {
    return null;
  }
}

function keep(token, username) {
  session = { token, username, restored: false };
  seenOpen = false;
  try {
    localStorage.setItem(SESSION, JSON.stringify({ token, username }));
  } catch {
    // Storage refused (a private window): the login holds until the page is reloaded.
  }
}

function signOut(zh, en) {
  session = null;
  pending = null;
  closeChooser();
  try {
    localStorage.removeItem(SESSION);
  } catch {
    // nothing kept
  }
  const note = $("login-note");
  note.hidden = !zh;
  if (zh) bilingual(note, zh, en);
  render();
}

// -- requests -----------------------------------------------------------------------------------

/** A fresh Idempotency-Key (crypto.randomUUID needs a secure context; a hall's LAN is http). */
function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function post(path, body, headers = {}) {
  try {
    const response = await fetch(`${settings.api}${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers },
      body,
      signal: AbortSignal.timeout(REQUEST_MS),
    });
    const answer = await response.json().catch(() => null);
    return { status: response.status, answer };
  } catch {
    return { status: 0, answer: null }; // no answer: the network, or the server is down
  }
}

async function send(path, body = {}) {
  if (busy || !session) return;
  const text = JSON.stringify(body);
  const again = pending && pending.path === path && pending.body === text;
  const key = again ? pending.key : newKey();
  pending = null;
  busy = true;
  render();
  const { status, answer } = await post(`/windows/${settings.window}/${path}`, text, {
    Authorization: `Bearer ${session.token}`,
    "Idempotency-Key": key,
  });
  busy = false;
  if (status === 200) {
    done(path, answer);
  } else if (status === 0 || status === 503 || status >= 500) {
    pending = { path, body: text, key };
    say("retry", ...RETRY);
  } else {
    refused(path, answer);
  }
  render();
}

function done(path, answer) {
  const number = answer?.ticket?.number;
  if (path === "call-next") {
    if (number) say("info", `已呼叫 ${number}`, `Called ${number}`);
    else say("info", "暂无可叫的号", "Nobody is waiting for this window");
  } else if (path === "logout") {
    signOut("已退出", "Logged out");
  } else {
    const [zh, en] = DONE[path] ?? ["已完成", "Done"];
    say("info", number ? `${number} ${zh}` : zh, number ? `${number}: ${en}` : en);
  }
}

const DONE = {
  recall: ["已重呼", "called again"],
  start: ["开始办理", "started"],
  finish: ["已办结", "finished"],
  "no-show": ["已过号", "marked as a no-show"],
  transfer: ["已转移", "transferred"],
  pause: ["已暂停", "Paused"],
  resume: ["已恢复", "Resumed"],
};

function refused(path, answer) {
  const code = answer?.error ?? "error";
  let found = REFUSALS[code];
  if (path === "logout" && code === "window_busy") {
    found = ["请先办结、转移或过号当前号码，再退出", "Finish, transfer or mark the ticket first, then log out"];
  }
  const other = answer?.detail?.window;
  if (path === "transfer" && code === "window_not_open" && other && other !== settings.window) {
    found = ["目标窗口未开启", "That window is not open"];
  }
  const [zh, en] = typeof found === "function" ? found(answer?.detail) : found ?? [
    "操作被拒绝",
    answer?.message ? `Refused: ${answer.message}` : "Refused",
  ];
  if (SIGNED_OUT.has(code) && found === REFUSALS[code]) signOut(zh, en);
  else say("error", zh, en, code);
}

async function login(event) {
  event.preventDefault();
  if (busy) return;
  const username = $("username").value.trim();
  const password = $("password").value;
  busy = true;
  render();
  const { status, answer } = await post(
    `/windows/${settings.window}/login`,
    JSON.stringify({ username, password }),
  );
  busy = false;
  $("password").value = "";
  if (status === 200 && answer?.token) {
    keep(answer.token, answer.username);
    $("login-note").hidden = true;
    say("info", `${answer.username} 已登录`, `${answer.username} logged in`);
  } else {
    let message;
    if (status === 0 || (status >= 500 && answer?.error !== "busy")) {
      message = ["系统未应答：请重试", "The hall did not answer: try again"];
    } else if (answer?.error === "unauthorized") {
      message = ["用户名或密码错误", "Wrong username or password"];
    } else if (answer?.error === "window_busy") {
      message = ["此窗口已有其他人登录", "Someone else is logged in at this window"];
    } else {
      const found = REFUSALS[answer?.error];
      message = typeof found === "function" ? found(answer?.detail) : found ?? [
        "登录失败",
        answer?.message ?? "Login refused",
      ];
    }
    const note = $("login-note");
    note.hidden = false;
    bilingual(note, ...message);
  }
  render();
}

// -- choosers (finish, transfer, pause, log out): numbered options, digits pick ---------------

function choose(title, options) {
  chooser = { options, typed: "" };
  bilingual($("chooser-title"), ...title);
  $("options").replaceChildren(
    ...options.map((option, index) => {
      const button = el("button", { type: "button", className: "option" });
      button.append(el("kbd", {}, String(index + 1)), el("span", {}, option.label[0]));
      button.append(el("span", { lang: "en" }, option.label[1]));
      button.addEventListener("click", () => pick(option));
      return el("li", {}, button);
    }),
  );
  $("typed").textContent = "";
  $("chooser").hidden = false;
  $("options").querySelector("button")?.focus({ preventScroll: true });
}

function pick(option) {
  closeChooser();
  option.pick();
}

function closeChooser() {
  chooser = null;
  $("chooser").hidden = true;
}

function typed(digit) {
  const options = chooser.options;
  const text = chooser.typed + digit;
  const exact = options[Number(text) - 1];
  const longer = options.some((_, i) => String(i + 1).startsWith(text) && String(i + 1) !== text);
  if (exact && !longer) return pick(exact);
  chooser.typed = exact || longer ? text : "";
  $("typed").textContent = chooser.typed ? `${chooser.typed}…` : "";
}

function chooseOutcome() {
  const options = settings.outcomes.map(([outcome, zh, en]) => ({
    label: [zh, en],
    pick: () => send("finish", { outcome }),
  }));
  choose(["办结方式", "Finish as"], options);
}

function choosePause() {
  const options = settings.pause_reasons.map(([reason, zh, en]) => ({
    label: [zh, en],
    pick: () => send("pause", { reason }),
  }));
  choose(["暂停原因", "Pause because"], options);
}

function chooseTransfer() {
  choose(
    ["转移到", "Transfer to"],
    [
      { label: ["其他业务", "Another service"], pick: chooseCategory },
      { label: ["其他窗口", "Another window"], pick: chooseWindow },
    ],
  );
}

function chooseCategory() {
  const options = settings.categories.map(([category, zh, en]) => ({
    label: [zh, en],
    pick: () => send("transfer", { category }),
  }));
  choose(["转到业务", "Transfer to the service"], options);
}

function chooseWindow() {
  const open = (view?.windows ?? []).filter((w) => w.id !== settings.window && w.state !== "closed");
  if (!open.length) {
    say("error", "没有其他已开启的窗口", "No other window is open");
    return;
  }
  const options = open.map((w) => ({
    label: [w.name, w.name_en],
    pick: () => send("transfer", { to_window: w.id }),
  }));
  choose(["转到窗口", "Transfer to the window"], options);
}

function confirmLogout() {
  choose(["确认退出登录？", "Log out and close the window?"], [
    { label: ["确认退出", "Log out"], pick: () => send("logout") },
  ]);
}

// -- acting -------------------------------------------------------------------------------------

function enabled(name) {
  const state = view?.state ?? "closed";
  return Boolean(session) && !busy && ACTIONS[name].states.includes(state);
}

function act(name) {
  if (!enabled(name)) {
    if (session && !busy) {
      const [zh, en] = STATES[view?.state ?? "closed"];
      say("error", `当前状态（${zh}）不能执行此操作`, `Not possible while the window is ${en.toLowerCase()}`);
    }
    return;
  }
  const action = ACTIONS[name];
  if (action.path) send(action.path);
  else action.choose();
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.altKey || event.metaKey) return;
  if (!$("login").hidden) return; // typing a username or password
  if (chooser) {
    if (/^[0-9]$/.test(event.key)) typed(event.key);
    else if (event.key === "Enter") {
      const exact = chooser.options[Number(chooser.typed) - 1];
      if (exact) pick(exact);
      else return; // the focused option's click
    } else if (event.key === "Escape") closeChooser();
    else if (event.key === "Backspace") {
      chooser.typed = "";
      $("typed").textContent = "";
    }
    else return;
    event.preventDefault();
    return;
  }
  if (event.repeat) return; // a key held down is one press
  const name = BY_KEY.get(event.key.toLowerCase());
  if (name) {
    event.preventDefault();
    act(name);
  }
});

for (const button of document.querySelectorAll("[data-act]")) {
  button.addEventListener("click", () => act(button.dataset.act));
}
$("chooser-cancel").addEventListener("click", closeChooser);
$("login-form").addEventListener("submit", login);

// -- showing ------------------------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function bilingual(target, zh, en) {
  target.replaceChildren(zh, " ", el("span", { lang: "en" }, en));
}

function say(kind, zh, en, code = "") {
  const message = $("message");
  clearTimeout(infoTimer);
  message.className = `message ${kind}`;
  message.dataset.code = code;
  bilingual(message, zh, en);
  if (kind === "info") infoTimer = setTimeout(() => message.replaceChildren(), INFO_MS);
}

function duration(ms) {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function render() {
  const state = view?.state ?? "closed";
  const body = document.body;
  for (const name of Object.keys(STATES)) body.classList.toggle(`state-${name}`, name === state);
  body.dataset.state = state;
  body.classList.toggle("busy", busy);
  $("login").hidden = Boolean(session);
  if (!session) {
    closeChooser();
    if (document.activeElement === document.body) $("username").focus({ preventScroll: true });
  }
  $("login-button").disabled = busy;
  for (const button of document.querySelectorAll("[data-act]")) {
    button.disabled = !enabled(button.dataset.act);
  }
  bilingual($("state-pill"), ...STATES[state]);
  $("who").hidden = !session;
  if (session) {
    $("who-name").textContent = view?.staff?.name ?? "";
    $("who-user").textContent = session.username;
    $("who-no").textContent = view?.staff?.staff_no ? `工号 ${view.staff.staff_no}` : "";
  }
  if (!view) return;
  renderHeld();
  renderQueue();
  tick();
}

function renderHeld() {
  const held = view.held;
  const ticket = view.ticket;
  $("held").hidden = !held || !ticket;
  $("idle").hidden = Boolean(held && ticket);
  if (held && ticket) {
    $("held-number").textContent = held.number;
    bilingual($("held-category"), ticket.category_name, ticket.category_name_en);
    const badges = [];
    if (held.priority_name) badges.push(el("span", { className: "badge priority" }, held.priority_name, " ", el("span", { lang: "en" }, held.priority_name_en)));
    if (held.transfers) badges.push(el("span", { className: "badge" }, `转移 ×${held.transfers}`));
    if (held.recalls) badges.push(el("span", { className: "badge" }, `重呼 ×${held.recalls}`));
    $("held-badges").replaceChildren(...badges);
    const serving = ticket.state === "serving";
    bilingual($("running-label"), serving ? "办理中" : "已呼叫", serving ? "Serving for" : "Called");
    return;
  }
  const lines = {
    open: [["可以叫号：按 N", "Ready: press N to call the next number"], ""],
    paused: [["暂停服务", "Paused"], view.pause_reason],
    closed: [["窗口未开启", "The window is closed"], ""],
  };
  const [line, reason] = lines[view.state] ?? lines.open;
  bilingual($("idle-line"), ...line);
  const detail = $("idle-detail");
  if (reason) bilingual(detail, reason.name, reason.name_en);
  else if (view.rating && view.state === "open") {
    bilingual(detail, `${view.rating.number} 待评价`, `${view.rating.number} awaiting the visitor's rating`);
  } else detail.replaceChildren();
}

function renderQueue() {
  $("waiting").textContent = String(view.waiting);
  const items = view.queue.map((next, index) => {
    const li = el("li", {});
    li.dataset.number = next.number;
    li.dataset.issued = next.issued_at;
    li.append(
      el("span", { className: "place" }, String(index + 1)),
      el("b", { className: "number" }, next.number),
      el("span", { className: "category" }, next.category_name, " ", el("span", { lang: "en" }, next.category_name_en)),
    );
    const tags = el("span", { className: "tags" });
    if (next.sent) tags.append(el("span", { className: "badge sent" }, "转来", " ", el("span", { lang: "en" }, "sent here")));
    if (next.priority_name) tags.append(el("span", { className: "badge priority" }, next.priority_name));
    li.append(tags, el("span", { className: "minutes" }));
    return li;
  });
  $("queue").replaceChildren(...items);
  $("queue-empty").hidden = view.queue.length > 0;
  const names = view.profile.map((id) => categories.get(id)?.[0] ?? id);
  const namesEn = view.profile.map((id) => categories.get(id)?.[1] ?? id);
  bilingual($("profile"), `本窗口业务：${names.join("、")}`, `Serves: ${namesEn.join(", ")}`);
}

function tick() {
  const now = feed.serverNow();
  $("clock").textContent = clock.format(now);
  if (!view) return;
  const held = view.held;
  if (held && view.ticket) {
    const issued = Date.parse(held.issued_at);
    const called = held.called_at ? Date.parse(held.called_at) : now.getTime();
    $("waited").textContent = duration(called - issued);
    const since = view.ticket.since ? Date.parse(view.ticket.since) : called;
    $("running").textContent = duration(now.getTime() - since);
  }
  for (const li of $("queue").children) {
    const minutes = Math.max(0, Math.floor((now.getTime() - Date.parse(li.dataset.issued)) / 60000));
    li.querySelector(".minutes").textContent = `${minutes} 分`;
  }
}

function received({ view: next }) {
  view = next;
  if (session && view.state !== "closed") seenOpen = true;
  // The window closed under this login (logged out elsewhere, closed by a manager): log in again.
  // A fresh login waits for the feed to show it open, so a frame sent before it is no reason.
  if (session && view.state === "closed" && (seenOpen || session.restored)) {
    signOut("窗口已关闭：请重新登录", "The window was closed: log in again");
  }
  render();
}

// The caller's device token (#token= once, then kept), for the feed of a hall that requires one.
const device = deviceToken(`${settings.hall}/caller`);
// With a caller's token the hall also records this desk online and offline (its health).
if (device) openDeviceLink(settings.hall, device, { agent: "caller-page/1" });
const feed = openFeed(settings.feed, {
  apply: (old, changes) => ({ ...old, ...changes }),
  onFrame: received,
  onState: showState,
  token: settings.require_device ? device : null,
});

render();
setInterval(tick, 500); // twice a second, so a second is never shown late by most of one
// A token given to the page already open (an administrator adding #token=…): start again with it.
addEventListener("hashchange", () => {
  if (new URLSearchParams(location.hash.slice(1)).has("token")) location.reload();
});
