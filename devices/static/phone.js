// The visitor's phone page: one ticket's feed; the call, with vibration and a beep; cancel; the
// rating form (扫码评). The ticket's secret comes in the fragment (#s=…), is kept in this
// browser's storage for reloads, and goes only in the bodies of visitor-cancel and visitor-rating.
import { openFeed, showState } from "/static/feed.js";

const settings = JSON.parse(document.getElementById("settings").textContent);
const $ = (id) => document.getElementById(id);
const PANELS = ["waiting", "called", "serving", "rating", "thanks", "ended"];

const ENDED = {
  cancelled: ["号票已取消", "This ticket was cancelled"],
  no_show: ["过号未到，号票已失效。如需办理，请重新取号。", "You missed your call: please take a new ticket"],
  expired: ["号票已过期", "This ticket has expired"],
  gone: ["此号票不是今天的", "This ticket is from an earlier day"],
  finished: ["办理完毕，感谢您的耐心", "Your service is finished: thank you"],
};

const secret = (() => {
  const key = `hall.ticket-secret.${settings.hall}.${settings.ticket}`;
  const given = new URLSearchParams(location.hash.slice(1)).get("s");
  try {
    if (given) localStorage.setItem(key, given);
    if (given) history.replaceState(null, "", location.pathname);
    return given ?? localStorage.getItem(key);
  } catch {
    return given; // storage refused (a private window): for this load only
  }
})();

let view = null;
let alerted = null; // the call (and recall) the phone last alerted for
let ratedHere = false; // this phone's rating was accepted or refused as a repeat
let repeat = false;

function bilingual(target, zh, en) {
  const span = document.createElement("span");
  span.lang = "en";
  span.textContent = en;
  target.replaceChildren(zh, " ", span);
}

function problem(zh, en) {
  $("problem").hidden = !zh;
  $("problem-zh").textContent = zh ?? "";
  $("problem-en").textContent = en ?? "";
  if (zh) $("problem").scrollIntoView({ block: "nearest", behavior: "smooth" });
}

/** The estimated wait as [figure, unit, unit in English]. */
function minutes(value) {
  if (value === null || value === undefined) return ["—", "暂无法估计", "no estimate yet"];
  if (value < 1) return ["<1", "分钟", "min"];
  return [`${Math.ceil(value)}`, "分钟", "min"];
}

function panelFor(v) {
  if (v.state === "waiting") return "waiting";
  if (v.state === "called") return "called";
  if (v.state === "serving") return "serving";
  if (v.state === "finished" && v.served_at) {
    if (v.rated || ratedHere) return "thanks";
    return secret ? "rating" : "ended";
  }
  return "ended";
}

function render(v) {
  view = v;
  document.body.dataset.state = v.state;
  $("number").textContent = v.number;
  bilingual($("category"), v.category_name, v.category_name_en);
  const panel = panelFor(v);
  for (const name of PANELS) $(name).hidden = name !== panel;
  $("ahead").replaceChildren(String(v.ahead), small("人", "people"));
  const [figure, unit, unitEn] = minutes(v.estimated_wait_minutes);
  $("wait").replaceChildren(figure, small(unit, unitEn));
  if (v.window) {
    for (const id of ["called-window", "serving-window"]) $(id).textContent = v.window.name;
    for (const id of ["called-window-en", "serving-window-en"]) $(id).textContent = v.window.name_en;
  }
  $("recall").hidden = !(v.recalls > 0);
  if (v.served_at) bilingual($("rating-where"), v.served_at.name, v.served_at.name_en);
  $("thanks-note").hidden = !repeat;
  const [zh, en] = ENDED[v.state] ?? [v.state, v.state];
  $("ended-zh").textContent = zh;
  $("ended-en").textContent = en;
  $("cancel").hidden = !secret;
  $("no-secret").hidden = Boolean(secret) || !["waiting", "finished"].includes(v.state) || panel === "thanks";
  renderAlerts();
  const call = `${v.called_at}/${v.recalls}`; // a recall alerts again
  if (v.state === "called" && call !== alerted) {
    alerted = call;
    alert();
  }
}

function small(zh, en) {
  const node = document.createElement("small");
  const english = document.createElement("span");
  english.lang = "en";
  english.textContent = en;
  node.append(zh, " ", english);
  return node;
}

// -- the call: vibration and a beep, where the phone allows ------------------------------------

let audio = null;

/** Sound needs a touch first on phones: the first one anywhere (or the button) unlocks it. */
function unlock() {
  try {
    audio ??= new AudioContext();
    audio.resume().then(renderAlerts, renderAlerts);
  } catch {
    audio = null; // no WebAudio: vibration only
  }
  renderAlerts();
}

function renderAlerts() {
  const coming = view === null || ["waiting", "called"].includes(view.state);
  $("alerts").hidden = !coming || (audio !== null && audio.state === "running");
}

function beep() {
  if (audio === null || audio.state !== "running") return false;
  const now = audio.currentTime;
  for (const start of [0, 0.35, 0.7]) {
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, now + start);
    gain.gain.exponentialRampToValueAtTime(0.4, now + start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + start + 0.25);
    tone.connect(gain).connect(audio.destination);
    tone.start(now + start);
    tone.stop(now + start + 0.3);
  }
  return true;
}

function alert() {
  const vibrated = typeof navigator.vibrate === "function" && navigator.vibrate([400, 150, 400, 150, 400]);
  const beeped = beep();
  document.body.dataset.alerted = `${vibrated ? "vibrate" : ""}${beeped ? " beep" : ""}`.trim() || "none";
}

$("alerts").addEventListener("click", unlock);
addEventListener("pointerdown", unlock, { once: true, capture: true });

// -- cancel ---------------------------------------------------------------------------------------

const REFUSED = {
  wrong_secret: ["号票密钥不符：请重新扫描号票上的二维码", "This page's key does not match the ticket: scan the QR code on your ticket again"],
  ticket_not_waiting: ["号票已被叫号或已结束，不能取消", "The ticket was called or has ended: it can no longer be cancelled"],
  not_ratable: ["此号票没有可评价的服务", "This ticket has no finished service to rate"],
  unavailable: ["服务器暂时不可用，请稍后再试", "The hall's server is busy: please try again"],
  unreachable: ["无法连接服务器，请检查网络后重试", "Cannot reach the hall's server: check your connection and try again"],
};

async function post(path, body) {
  try {
    const response = await fetch(`${settings.api}/${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ secret, ...body }),
      signal: AbortSignal.timeout(10000),
    });
    let answer = null;
    try {
      answer = await response.json();
    } catch {
      answer = null;
    }
    if (response.ok) return { ok: true, body: answer };
    const code = answer?.error ?? (response.status === 503 ? "unavailable" : `http_${response.status}`);
    return { ok: false, code, message: answer?.message ?? "" };
  } catch {
    return { ok: false, code: "unreachable", message: "" };
  }
}

function refusal(result) {
  const known = REFUSED[result.code];
  document.body.dataset.error = result.code;
  if (known) problem(...known);
  else problem(`操作未成功（${result.code}）`, result.message || `Refused (${result.code})`);
}

$("cancel").addEventListener("click", () => {
  $("confirm").hidden = false;
  $("confirm-no").focus();
});
$("confirm-no").addEventListener("click", () => ($("confirm").hidden = true));
$("confirm-yes").addEventListener("click", async () => {
  $("confirm").hidden = true;
  problem(null);
  const result = await post("visitor-cancel", {});
  if (!result.ok) return refusal(result);
  render({ ...view, ...result.body, window: view.window, served_at: view.served_at });
});

// -- rating ---------------------------------------------------------------------------------------

const form = $("rating-form");

function level() {
  const checked = form.querySelector("input[name=level]:checked");
  return checked ? Number(checked.value) : null;
}

form.addEventListener("change", () => {
  const low = settings.low_levels.includes(level());
  $("reasons").hidden = !low;
  $("rating-error").textContent = "";
});
$("comment").addEventListener("input", () => {
  $("counter").textContent = `${$("comment").value.length}/200`;
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  problem(null);
  const chosen = level();
  const reasons = [...form.querySelectorAll("input[name=reason]:checked")].map((box) => box.value);
  if (chosen === null) return bilingual($("rating-error"), "请选择满意度", "Please choose a rating");
  const low = settings.low_levels.includes(chosen);
  if (low && reasons.length === 0) {
    return bilingual($("rating-error"), "请至少选择一项原因", "Please choose at least one reason");
  }
  // One line of plain text (the server refuses line breaks and control characters).
  const comment = $("comment").value.replace(/[\s\u0000-\u001f\u007f-\u009f]+/g, " ").trim();
  const body = { level: chosen, reasons: low ? reasons : [] };
  if (comment) body.comment = comment.slice(0, 200);
  $("submit-rating").disabled = true;
  const result = await post("visitor-rating", body);
  $("submit-rating").disabled = false;
  if (result.ok || result.code === "already_rated") {
    ratedHere = true;
    repeat = !result.ok;
    document.body.dataset.rated = result.ok ? "accepted" : "already";
    return render(view);
  }
  refusal(result);
});

// -- the feed -------------------------------------------------------------------------------------

openFeed(settings.feed, {
  apply: (old, changes) => ({ ...old, ...changes }),
  onFrame: ({ view: next }) => render(next),
  onState(state, detail) {
    if (state === "refused" && detail.code === 4404) {
      detail = { ...detail, zh: "今天没有这张号票", en: "No such ticket today" };
    }
    showState(state, detail);
  },
});
renderAlerts();
