// The kiosk (取号机): zones → services → ticket, by touch or keyboard; elder mode; an optional ID
// number. Waiting counts come live from the hall screen's feed; tickets from POST …/tickets.
import { formatter, openFeed, replaceById, showState } from "/static/feed.js";
import { openDeviceLink } from "./devicelink.js";
import { deviceToken } from "./device-token.js";
import { PROBLEMS, cleanId, idProblem, maskId } from "./id-number.js";

const settings = JSON.parse(document.getElementById("settings").textContent);
const $ = (id) => document.getElementById(id);
const token = deviceToken(settings.hall);
const AUTO_RETRIES = 2; // an unreachable server is tried again this often by itself, then asked
const REQUEST_MS = 8000;

const STEPS = ["setup", "zones", "categories", "id", "ticket", "message"];
const zones = settings.zones;
const single = zones.length === 1; // one zone: start at its services
const start = single ? "categories" : "zones";

let step = null;
let zone = null; // the zone whose services are shown
let idNumber = null; // entered and checked; forgotten after each ticket and when idle
let idReturn = start; // the step the ID entry goes back to
let pending = null; // a tap's request, kept to retry under its Idempotency-Key: {body, key}
let printer = false; // this kiosk's tickets are printed (devices/me)
let counts = { queues: new Map(), zones: new Map() };
let idleTimer = null;
let blocked = !token; // no usable token: the setup message stays up

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

const en = (text) => el("span", { lang: "en" }, text);

function bilingual(target, zh, english) {
  target.replaceChildren(zh, " ", en(english));
}

// -- steps -------------------------------------------------------------------------------------

function show(name) {
  step = name;
  for (const each of STEPS) $(`${each}-step`).hidden = each !== name;
  document.body.dataset.step = name;
  const choosing = name === "zones" || name === "categories";
  $("bottom").hidden = !choosing;
  $("back").hidden = !(name === "categories" && !single);
  renderId();
  // The ID field takes the physical keyboard's digits; a keyboard user lands on the first thing
  // to press (a focus ring on a touch screen would look like a choice already made).
  if (name === "id") $("id-input").focus({ preventScroll: true });
  else if (document.body.classList.contains("keyboard") || name === "message" || name === "ticket") {
    $(`${name}-step`).querySelector("button:not([hidden])")?.focus({ preventScroll: true });
  } else document.activeElement?.blur();
}

// Buttons a page of choices holds: all of a hall's zones fit on one normally; elder mode shows
// fewer, larger ones and pages through the rest (scrolling is easy to miss on a kiosk).
function pageSize() {
  return document.body.classList.contains("elder") ? 4 : 8;
}

const lists = new Map(); // container id -> {items, onPick, page}

function choices(container, items, onPick) {
  lists.set(container.id, { items, onPick, page: 0 });
  renderChoices(container);
}

function renderChoices(container) {
  const list = lists.get(container.id);
  if (!list) return;
  const size = pageSize();
  const pages = Math.max(1, Math.ceil(list.items.length / size));
  list.page = Math.min(list.page, pages - 1);
  const shown = list.items.slice(list.page * size, (list.page + 1) * size);
  container.replaceChildren(
    ...shown.map((item, index) => {
      const button = el("button", { type: "button", className: "choice" });
      button.dataset.id = item.id;
      button.append(el("kbd", { className: "shortcut", ariaHidden: "true" }, String(index + 1)));
      if (item.prefix) button.append(el("span", { className: "prefix" }, item.prefix));
      button.append(
        el("span", { className: "name" }, item.name),
        el("span", { className: "name-en", lang: "en" }, item.name_en),
        el("span", { className: "count" }),
      );
      button.addEventListener("click", () => list.onPick(item));
      return button;
    }),
  );
  container.dataset.items = String(shown.length);
  const pager = $(`${container.id}-pager`);
  pager.hidden = pages === 1;
  pager.querySelector(".page").textContent = `${list.page + 1} / ${pages}`;
  pager.querySelector(".previous").disabled = list.page === 0;
  pager.querySelector(".next").disabled = list.page === pages - 1;
  renderCounts();
}

function turn(id, by) {
  const list = lists.get(id);
  list.page += by;
  renderChoices($(id));
  const target = $(`${id}-pager`).querySelector(by > 0 ? ".next" : ".previous");
  (target.disabled ? $(id).querySelector(".choice") : target).focus({ preventScroll: true });
}

for (const id of ["zones", "categories"]) {
  $(`${id}-pager`).querySelector(".previous").addEventListener("click", () => turn(id, -1));
  $(`${id}-pager`).querySelector(".next").addEventListener("click", () => turn(id, 1));
}

function openZone(item) {
  zone = item;
  $("zone-name").textContent = item.name;
  $("zone-name-en").textContent = item.name_en;
  choices($("categories"), item.categories, (category) => take({ category: category.id }));
  show("categories");
}

function home() {
  if (single) openZone(zones[0]);
  else show("zones");
}

function back() {
  if (step === "categories" && !single) show("zones");
  else if (step === "id") show(idReturn);
  else home();
}

// -- waiting counts (the hall screen's feed) -----------------------------------------------------

/** Only the queues and zones matter here; the rest of the hall view is left as it came. */
function apply(view, changes) {
  const next = { ...view };
  for (const name of ["queues", "zones"]) {
    if (changes[name]) next[name] = replaceById(view[name], changes[name]);
  }
  return next;
}

function renderCounts() {
  const counted = (container, map) => {
    for (const button of container.querySelectorAll(".choice")) {
      const waiting = map.get(button.dataset.id);
      const count = button.querySelector(".count");
      if (waiting === undefined) count.replaceChildren();
      else count.replaceChildren("等候 ", el("b", {}, String(waiting)), " 人 ", en(`${waiting} waiting`));
    }
  };
  counted($("zones"), counts.zones);
  counted($("categories"), counts.queues);
}

if (token) {
  // The hall records the kiosk online and offline (its health, in the snapshot) through the link.
  openDeviceLink(settings.hall, token, { agent: "kiosk-page/1" });
  openFeed(settings.feed, {
    token,
    apply,
    onFrame({ view }) {
      counts = {
        queues: new Map(view.queues.map((q) => [q.id, q.waiting])),
        zones: new Map(view.zones.map((z) => [z.id, z.waiting])),
      };
      renderCounts();
    },
    // The counts are a courtesy: a refused feed greys them, it never stops the kiosk.
    onState: (state) => showState(state === "refused" ? "stale" : state),
  });
}

// -- the ID number -------------------------------------------------------------------------------

function renderId() {
  $("id-masked").textContent = idNumber ? maskId(idNumber) : "";
  $("id-masked").hidden = !idNumber;
  $("id-clear").hidden = !idNumber;
  $("id-open").hidden = Boolean(idNumber);
}

function openId() {
  idReturn = step === "id" || step === "message" ? start : step;
  $("id-input").value = "";
  $("id-error").textContent = "";
  show("id");
}

function forgetId() {
  idNumber = null;
  $("id-input").value = "";
  renderId();
}

function typeKey(key) {
  const input = $("id-input");
  input.value = key === "Backspace" ? input.value.slice(0, -1) : cleanId(input.value + key);
  $("id-error").textContent = "";
  input.focus({ preventScroll: true });
}

$("id-input").addEventListener("input", (event) => {
  const input = event.target;
  const cleaned = cleanId(input.value);
  if (cleaned !== input.value) input.value = cleaned;
  $("id-error").textContent = "";
});

$("id-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const typed = $("id-input").value;
  const problem = idProblem(typed);
  if (problem) {
    const [zh, english] = PROBLEMS[problem];
    bilingual($("id-error"), zh, english);
    $("id-error").dataset.problem = problem;
    $("id-input").focus();
    return;
  }
  idNumber = typed;
  $("id-input").value = ""; // kept once, in idNumber, until the ticket is taken
  show(idReturn);
});

for (const key of document.querySelectorAll(".keypad .key")) {
  key.addEventListener("click", () => typeKey(key.dataset.key));
}
$("id-open").addEventListener("click", openId);
$("id-clear").addEventListener("click", () => {
  forgetId();
  $("id-open").focus();
});
$("id-cancel").addEventListener("click", () => show(idReturn));

// -- taking a ticket -----------------------------------------------------------------------------

/** A random UUID (crypto.randomUUID needs https, which a hall's kiosk may not have). */
function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Take a ticket: `fields` are the issue request's ({category}); the ID number, if entered, goes
 * with them. 预约签到 (appointment check-in, a later issue) comes through here too, with the
 * booking's {category, priority: "appointment", appointment: slot start}: nothing on screen leads
 * to it yet.
 */
function take(fields) {
  if (pending) return;
  const body = idNumber ? { ...fields, id_number: idNumber } : fields;
  pending = { body, key: newKey() };
  send(pending);
}

async function send(request) {
  $("busy").hidden = false;
  try {
    for (let attempt = 0; ; attempt += 1) {
      const response = await post(request);
      if (request !== pending) return; // abandoned meanwhile
      if (response !== null && response.status !== 503) return await answered(response);
      if (attempt >= AUTO_RETRIES) return unreachable(response);
      await new Promise((resolve) => setTimeout(resolve, 1000 * (attempt + 1)));
    }
  } finally {
    $("busy").hidden = true;
  }
}

async function post(request) {
  try {
    return await fetch(`${settings.api}/tickets`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${token}`,
        "Content-Type": "application/json",
        "Idempotency-Key": request.key, // the same on every retry: one tap, one ticket
      },
      body: JSON.stringify(request.body),
      signal: AbortSignal.timeout(REQUEST_MS),
    });
  } catch {
    return null; // no answer: the server is unreachable (or took too long)
  }
}

async function answered(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.status === 201 && body) {
    done();
    return showTicket(body);
  }
  const code = body?.error ?? `http_${response.status}`;
  const detail = body?.detail ?? {};
  if (code === "too_many_attempts") return tooFast(detail.retry_after ?? 3);
  const category = pending?.body.category;
  done();
  if (response.status === 401) return setup("token");
  refused(code, detail, category);
}

/** The tap is over (answered or given up): its key and the ID number are forgotten. */
function done() {
  pending = null;
  forgetId();
}

function categoryNames(id) {
  for (const z of zones) for (const c of z.categories) if (c.id === id) return [c.name, c.name_en];
  return [id, id];
}

const REFUSALS = {
  quota_reached: (d, [zh, english]) => [`今日「${zh}」的号已取完`, `No more tickets for ${english} today`],
  hall_closed: () => ["现在不是取号时间，请在办公时间内取号", "The hall is closed now: tickets are issued in opening hours"],
  already_holding: () => [
    "您已持有该业务的号票，请留意叫号",
    "You already hold a ticket for this service: please wait for its call",
  ],
  invalid_id_number: () => ["身份证号码无效，请核对后重新输入", "That ID number is not valid: please check it and enter it again"],
  forbidden: () => ["此设备不能取号，请联系管理员", "This device may not issue tickets: please call the staff"],
  unknown_category: () => ["该业务暂不能取号，请咨询服务台", "This service cannot be taken here now: please ask at the help desk"],
};

function message(zh, english, { number = null, retry = false, again = false } = {}) {
  $("m-zh").textContent = zh;
  $("m-en").textContent = english;
  $("m-number").textContent = number ?? "";
  $("m-number").hidden = number === null;
  $("m-retry").hidden = !retry;
  $("m-retry").disabled = false;
  $("m-id").hidden = !again;
  show("message");
}

function refused(code, detail, category) {
  const known = REFUSALS[code];
  const [zh, english] = known
    ? known(detail, categoryNames(category))
    : [`取号失败（${code}），请咨询服务台`, `No ticket (${code}): please ask at the help desk`];
  $("message-step").dataset.error = code;
  message(zh, english, { number: detail.number ?? null, again: code === "invalid_id_number" });
}

function unreachable(response) {
  $("message-step").dataset.error = response ? "unavailable" : "unreachable";
  message("暂时无法连接服务器，请重试", "The hall's server cannot be reached: please try again", { retry: true });
}

function tooFast(seconds) {
  $("message-step").dataset.error = "too_many_attempts";
  let left = Math.max(1, Math.ceil(seconds));
  const say = () =>
    [`取号过于频繁，请 ${left} 秒后再试`, `Too many tickets at once: please try again in ${left} s`];
  message(...say(), { retry: true });
  $("m-retry").disabled = true;
  const timer = setInterval(() => {
    left -= 1;
    if (step !== "message" || pending === null) return clearInterval(timer);
    if (left > 0) {
      [$("m-zh").textContent, $("m-en").textContent] = say();
      return;
    }
    clearInterval(timer);
    $("m-zh").textContent = "现在可以重试";
    $("m-en").textContent = "You may try again now";
    $("m-retry").disabled = false;
    $("m-retry").focus();
  }, 1000);
}

/** The estimated wait as [figure, unit, unit in English]. */
function minutes(value) {
  if (value === null || value === undefined) return ["—", "暂无法估计", "no estimate yet"];
  if (value < 1) return ["<1", "分钟", "min"];
  return [`${Math.ceil(value)}`, "分钟", "min"];
}

function showTicket(ticket) {
  $("t-number").textContent = ticket.number;
  bilingual($("t-category"), ticket.category_name, ticket.category_name_en);
  const priority = settings.priorities[ticket.priority];
  $("t-priority").hidden = !priority;
  if (priority) bilingual($("t-priority"), priority[0], priority[1]);
  $("t-ahead").replaceChildren(String(ticket.ahead), el("small", {}, "人 ", en("people")));
  const [figure, unit, unitEn] = minutes(ticket.estimated_wait_minutes);
  $("t-wait").replaceChildren(figure, el("small", {}, unit, " ", en(unitEn)));
  $("t-take").hidden = !printer;
  $("ticket-step").dataset.ticket = ticket.id;
  show("ticket");
}

$("m-retry").addEventListener("click", () => {
  if (pending) send(pending);
});
$("m-id").addEventListener("click", openId);
$("m-back").addEventListener("click", () => {
  done(); // a retry given up: the ticket, if it was issued after all, stays with the hall
  home();
});
$("t-done").addEventListener("click", home);
$("back").addEventListener("click", back);

// -- elder mode (适老化), idle, keyboard ---------------------------------------------------------

function elder(on) {
  document.body.classList.toggle("elder", on);
  $("elder").setAttribute("aria-checked", String(on));
  for (const id of ["zones", "categories"]) renderChoices($(id));
}
$("elder").addEventListener("click", () => elder(!document.body.classList.contains("elder")));

/** Back to the start, as the next visitor should find the kiosk. */
function reset() {
  if (pending !== null && !$("busy").hidden) return poke(); // a request is under way
  pending = null;
  forgetId();
  elder(false);
  document.body.classList.remove("keyboard");
  if (!blocked) home();
}

function poke() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(reset, settings.idle_seconds * 1000);
}

for (const type of ["pointerdown", "keydown", "input"]) addEventListener(type, poke, true);
addEventListener("pointerdown", () => document.body.classList.remove("keyboard"), true);

addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === "Tab" || /^[0-9]$/.test(event.key)) document.body.classList.add("keyboard");
  if (event.key === "Escape") {
    event.preventDefault();
    if (step === "message" || step === "ticket") $(step === "ticket" ? "t-done" : "m-back").click();
    else back();
    return;
  }
  // Digits pick the zone or service with that number (shown once the keyboard is in use).
  if ((step === "zones" || step === "categories") && /^[1-9]$/.test(event.key)) {
    const buttons = $(step).querySelectorAll(".choice");
    const picked = buttons[Number(event.key) - 1];
    if (picked) {
      event.preventDefault();
      picked.click();
    }
  }
});

// -- start ---------------------------------------------------------------------------------------

function setup(why) {
  blocked = true;
  if (why === "token") {
    $("setup-zh").textContent = "取号机的设备令牌无效";
    $("setup-en").textContent = "This kiosk's device token is not valid";
  } else if (why) {
    $("setup-zh").textContent = `此令牌不是取号机的（${why}）`;
    $("setup-en").textContent = `This token is not a kiosk's (it is a ${why}'s)`;
  }
  show("setup");
}

/** Ask the hall who this device is: a kiosk, with a printer or not. */
async function whoAmI() {
  let response = null;
  try {
    response = await fetch(`${settings.api}/devices/me`, {
      headers: { Authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(REQUEST_MS),
    });
  } catch {
    response = null;
  }
  if (response === null || response.status >= 500) {
    setTimeout(whoAmI, 30000); // the server is away: tickets will say so; ask again later
    return;
  }
  if (response.status === 401) return setup("token");
  const me = await response.json();
  if (me.kind !== "kiosk") return setup(me.kind);
  printer = me.printer !== null;
  document.body.dataset.printer = String(printer);
}

const clock = formatter(settings.timezone, { hour: "2-digit", minute: "2-digit" });
const tick = () => ($("clock").textContent = clock.format(new Date()));
tick();
setInterval(tick, 1000);

// A token given while the page is open (the address edited by hand): start again with it.
addEventListener("hashchange", () => {
  if (new URLSearchParams(location.hash.slice(1)).has("token")) location.reload();
});

choices($("zones"), zones, openZone);
if (token) {
  home();
  whoAmI();
  poke();
} else {
  setup(null);
}
