// The evaluation pad (评价器): its window's staff card while idle; after each transaction the
// window finishes, the five levels (reasons and a comment for the two lowest), posted with the
// pad's token. No answer within [rating] pad_seconds is posted as "not rated" (level null): never
// a level the visitor did not choose.
import { formatter, openFeed, showState } from "/static/feed.js";
import { openDeviceLink } from "./devicelink.js";
import { deviceToken } from "./device-token.js";

const settings = JSON.parse(document.getElementById("settings").textContent);
const $ = (id) => document.getElementById(id);
const token = deviceToken(`${settings.hall}/pad`);
const PAD_MS = settings.pad_seconds * 1000;
const THANKS_MS = 4000;
const REFUSED_MS = 6000;
const REQUEST_MS = 8000;
const RETRY_MS = 30000; // an answer is sent again (same Idempotency-Key) this long at most
const STEPS = ["setup", "idle", "rate", "reasons", "message"];
const LEVEL_NAMES = Object.fromEntries(
  [...document.querySelectorAll(".level")].map((b) => [b.dataset.level, b.querySelector(".level-name").textContent]),
);
const clock = formatter(settings.timezone, { hour: "2-digit", minute: "2-digit" });

// What the pad says when the hall refuses a rating (codes of the API's error bodies).
const REFUSALS = {
  already_rated: ["本次服务已评价过（例如已在手机上评价）", "This service has been rated already (on a phone, perhaps)"],
  not_served_here: ["此业务不是在本窗口办理的，不能在此评价", "This service was not at this window: it cannot be rated here"],
  not_ratable: ["此业务尚未办结，不能评价", "This service is not finished: there is nothing to rate yet"],
  unknown_ticket: ["今天没有这个号码", "No such ticket today"],
  unauthorized: ["评价器令牌无效，请联系管理员", "This pad's token is not valid: please tell the staff"],
  forbidden: ["此令牌不是评价器的，请联系管理员", "This token is not a pad's: please tell the staff"],
};

let step = null;
let feed = null;
let view = null;
let offer = null; // {ticket, number, deadline (performance.now() ms), level, reasons}
let countdown = null;
let resting = null; // the timer of a thanks or refusal message, then idle
const handled = new Set(); // tickets this pad has answered for (or given up on)

function show(name) {
  step = name;
  for (const each of STEPS) $(`${each}-step`).hidden = each !== name;
  document.body.dataset.step = name;
}

function bilingual(target, zh, en) {
  const span = document.createElement("span");
  span.lang = "en";
  span.textContent = en;
  target.replaceChildren(zh, " ", span);
}

function setup(zh, en) {
  $("setup-zh").textContent = zh;
  $("setup-en").textContent = en;
  show("setup");
}

const ICONS = { sending: "…", thanks: "✓", refused: "!" };

/** Say something for `ms`, then back to idle (and to a rating that came meanwhile). */
function message(kind, zh, en, ms) {
  $("message-icon").textContent = ICONS[kind];
  $("message-zh").textContent = zh;
  $("message-en").textContent = en;
  document.body.dataset.message = kind;
  show("message");
  clearTimeout(resting);
  resting = setTimeout(() => {
    resting = null;
    show("idle");
    consider(feed.serverNow().getTime());
  }, ms);
}

// -- the transaction to rate ----------------------------------------------------------------------

/** Offer the view's rating if it is new to this pad and finished less than pad_seconds ago. */
function consider(nowMs) {
  const due = view?.rating;
  if (!due || handled.has(due.ticket) || resting !== null) return;
  if (offer?.ticket === due.ticket) return;
  const left = PAD_MS - (nowMs - Date.parse(due.finished_at));
  if (left <= 0) return; // the pad never offered it (it was away): nothing to record
  offer = { ticket: due.ticket, number: due.number, deadline: performance.now() + left, level: null };
  $("rate-number").textContent = due.number;
  bilingual($("rate-window"), view.window.name, view.window.name_en);
  for (const reason of document.querySelectorAll(".reason")) reason.setAttribute("aria-pressed", "false");
  $("comment").value = "";
  counted();
  show("rate");
  tickDown();
  clearInterval(countdown);
  countdown = setInterval(tickDown, 250);
}

function tickDown() {
  if (!offer) return;
  const left = Math.ceil((offer.deadline - performance.now()) / 1000);
  if (left <= 0) {
    answer(offer, { level: null }); // nobody chose: "not rated"
    return;
  }
  const text = `${left} 秒 · ${left} s`;
  $("countdown").textContent = text;
  $("countdown-low").textContent = text;
}

function touched() {
  // A visitor who is choosing gets the time they need: the countdown starts again.
  if (offer) offer.deadline = Math.max(offer.deadline, performance.now() + PAD_MS);
}

function withdraw() {
  offer = null;
  clearInterval(countdown);
  countdown = null;
}

function chose(level) {
  if (!offer) return;
  touched();
  if (settings.low_levels.includes(level)) {
    offer.level = level;
    $("low-name").textContent = LEVEL_NAMES[level];
    document.body.dataset.low = String(level);
    show("reasons");
    reasonsChanged();
  } else {
    answer(offer, { level });
  }
}

function reasonsChanged() {
  touched();
  $("submit").disabled = !document.querySelector(".reason[aria-pressed='true']");
}

function counted() {
  $("comment-count").textContent = `${$("comment").value.length}/200`;
}

function submitLow() {
  if (!offer || !offer.level) return;
  const reasons = [...document.querySelectorAll(".reason[aria-pressed='true']")].map((b) => b.dataset.reason);
  if (!reasons.length) return;
  const comment = $("comment").value.trim();
  answer(offer, { level: offer.level, reasons, ...(comment ? { comment } : {}) });
}

// -- sending --------------------------------------------------------------------------------------

function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Post one answer for `offered`, retried under one Idempotency-Key until the hall answers. */
async function answer(offered, body) {
  if (offer !== offered) return;
  withdraw();
  handled.add(offered.ticket);
  const quiet = body.level === null; // the visitor left: nothing to thank anyone for
  if (!quiet) message("sending", "正在提交…", "Sending…", RETRY_MS + REQUEST_MS);
  else show("idle");
  const key = newKey();
  const until = performance.now() + RETRY_MS;
  for (let wait = 500; ; wait = Math.min(wait * 2, 5000)) {
    const { status, reply } = await post(offered.ticket, body, key);
    if (status === 200) {
      if (!quiet) message("thanks", "感谢您的评价！", "Thank you for your rating!", THANKS_MS);
      return;
    }
    if (status !== 0 && status < 500) {
      const [zh, en] = REFUSALS[reply?.error] ?? ["评价未被接受", reply?.message ?? "The rating was not accepted"];
      if (!quiet) message("refused", zh, en, REFUSED_MS);
      return;
    }
    if (performance.now() > until) {
      if (!quiet) message("refused", "暂时无法提交评价，请联系工作人员", "The rating could not be sent: please tell the staff", REFUSED_MS);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

async function post(ticket, body, key) {
  try {
    const response = await fetch(`${settings.api}/tickets/${encodeURIComponent(ticket)}/rating`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}`, "Idempotency-Key": key },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_MS),
    });
    return { status: response.status, reply: await response.json().catch(() => null) };
  } catch {
    return { status: 0, reply: null };
  }
}

// -- the window's feed ----------------------------------------------------------------------------

function renderIdle() {
  $("window-name").textContent = view.window.name;
  $("window-name-en").textContent = view.window.name_en;
  $("card-window").textContent = view.window.name;
  $("card-window-en").textContent = view.window.name_en;
  const staff = view.state === "closed" ? null : view.staff;
  $("card").hidden = !staff;
  $("staff-name").textContent = staff?.name ?? "";
  $("staff-name").hidden = !staff?.name;
  $("staff-no").textContent = staff?.staff_no ?? "—";
  if (!staff) bilingual($("welcome"), "窗口暂未开放", "This window is not open");
  else if (view.state === "paused") bilingual($("welcome"), "暂停服务，请稍候", "Paused for a moment");
  else bilingual($("welcome"), "欢迎您，请在办理后对我们的服务进行评价", "Welcome. Please rate our service when you are done.");
}

function received({ view: next, frame }) {
  view = next;
  renderIdle();
  if (offer && view.rating?.ticket !== offer.ticket) {
    const old = offer;
    if (view.rating) {
      answer(old, { level: null }); // the window finished the next one: this visitor left
    } else {
      withdraw(); // rated meanwhile (on the phone), or recorded elsewhere: nothing to do here
      handled.add(old.ticket);
      if (step === "rate" || step === "reasons") show("idle");
    }
  }
  if (step === null) show("idle");
  consider(Date.parse(frame.now));
}

async function start() {
  if (!token) {
    setup("本评价器尚未设置", "This evaluation pad is not set up yet");
    return;
  }
  let me = null;
  for (let wait = 1000; me === null; wait = Math.min(wait * 2, 10000)) {
    try {
      const response = await fetch(`${settings.api}/devices/me`, {
        headers: { Authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(REQUEST_MS),
      });
      if (response.status === 401 || response.status === 403) {
        setup("评价器令牌无效", "This pad's device token is not valid");
        return;
      }
      if (response.ok) me = await response.json();
    } catch {
      // the server is away: try again
    }
    if (me === null) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  if (me.kind !== "pad" || !me.window) {
    setup("此令牌不是评价器的", "This device token is not an evaluation pad's");
    return;
  }
  document.body.dataset.window = me.window;
  // The hall records the pad online and offline (its health, in the snapshot) through the link.
  openDeviceLink(settings.hall, token, { agent: "pad-page/1" });
  feed = openFeed(`/ws/halls/${settings.hall}/screens/windows/${me.window}`, {
    apply: (old, changes) => ({ ...old, ...changes }),
    onFrame: received,
    onState: showState,
    token: settings.require_device ? token : null,
  });
}

for (const button of document.querySelectorAll(".level")) {
  button.addEventListener("click", () => chose(Number(button.dataset.level)));
}
for (const button of document.querySelectorAll(".reason")) {
  button.addEventListener("click", () => {
    button.setAttribute("aria-pressed", String(button.getAttribute("aria-pressed") !== "true"));
    reasonsChanged();
  });
}
$("comment").addEventListener("input", () => {
  touched();
  counted();
});
$("back").addEventListener("click", () => {
  touched();
  show("rate");
});
$("submit").addEventListener("click", submitLow);

function tick() {
  $("clock").textContent = clock.format(feed ? feed.serverNow() : new Date());
}
tick();
setInterval(tick, 1000);
start();
// A token given to the page already open (an administrator adding #token=…): start again with it.
addEventListener("hashchange", () => {
  if (new URLSearchParams(location.hash.slice(1)).has("token")) location.reload();
});
