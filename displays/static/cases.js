// 差评整改: the open cases of bad ratings, each with the form for exactly its next step, and the
// discipline breaches with their excuses. Polled: cases change a few times a day, not a second.
import { api, newKey, Refused, sessionEnded } from "./manager-session.js";
import { $, both, el, refusal, settings, start, when } from "./office.js";

const hall = settings.hall;
const POLL_MS = 4000;
const TEXT_MAX = String(settings.text_max); // the server's limit on a note: typing stops there
const LEVELS = { 1: ["非常不满意", "Very dissatisfied"], 2: ["不满意", "Dissatisfied"] };
const STEPS = {
  verify: ["核实", "Verify"],
  confirm: ["复核", "Confirm"],
  rectify: ["整改", "Rectify"],
  revisit: ["回访", "Revisit"],
  close: ["结案", "Close"],
};
const CHANNELS = { pad: ["评价器", "pad"], phone: ["手机", "phone"] };
const UNITS = { minutes: ["分钟", "min"], seconds: ["秒", "s"], "no-shows": ["次", "no-shows"] };

let me = null;
let results = [];
let breachDays = 1;
let pauseBreaches = false; // while an excuse is being typed, polling leaves the table alone
const shown = new Map(); // case id -> [its JSON, its element]: unchanged cases keep their forms

function status(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

async function refresh() {
  try {
    const [cases, breaches, closed] = await Promise.all([
      api(hall, "/cases"),
      api(hall, `/breaches?days=${breachDays}`),
      api(hall, "/cases/closed?days=30"),
    ]);
    results = cases.revisit_results;
    renderCases(cases.cases);
    renderClosed(closed.cases);
    if (!pauseBreaches) renderBreaches(breaches.breaches);
    status(`${when(new Date().toISOString(), { hour: "2-digit", minute: "2-digit", second: "2-digit" })} 已更新 / updated`);
  } catch (error) {
    if (error instanceof Refused && error.status === 401) {
      sessionEnded(hall); // the login form says why
      location.reload();
      return;
    }
    status(`更新失败 / Could not update: ${error.message}`, true);
  }
}

function renderCases(cases) {
  const list = $("case-list");
  const ids = new Set(cases.map((c) => c.id));
  for (const [id, [, node]] of shown) {
    if (!ids.has(id)) {
      node.remove();
      shown.delete(id);
    }
  }
  let before = null;
  for (const item of cases) {
    const json = JSON.stringify(item);
    let node = shown.get(item.id)?.[0] === json ? shown.get(item.id)[1] : null;
    if (node === null) {
      node = renderCase(item);
      shown.get(item.id)?.[1].replaceWith(node);
      shown.set(item.id, [json, node]);
    }
    // Keep the server's order (overdue first) without rebuilding what did not change.
    if (before === null ? list.firstChild !== node : before.nextSibling !== node) {
      if (before === null) list.prepend(node);
      else before.after(node);
    }
    before = node;
  }
  $("case-count").textContent = String(cases.length);
  $("no-cases").hidden = cases.length > 0;
}

function renderCase(item) {
  const [level, levelEn] = LEVELS[item.level] ?? [String(item.level), String(item.level)];
  const [channel, channelEn] = CHANNELS[item.channel] ?? [item.channel, item.channel];
  const node = el(
    "article",
    { class: `case${item.overdue ? " overdue" : ""}`, "data-case": item.id, "data-stage": item.stage },
    el(
      "header",
      {},
      el("b", { class: "number" }, item.number),
      el("span", { class: `level level-${item.level}` }, both(level, levelEn)),
      item.overdue ? el("span", { class: "flag" }, both("逾期", "Overdue")) : null,
      el(
        "span",
        { class: "meta" },
        `${item.window} 号窗口 · ${item.staff_name} · ${item.category.name} · ${channel}`,
        " ",
        el("span", { lang: "en" }, `window ${item.window} · ${item.category.name_en} · ${channelEn}`),
        " · ",
        when(item.rated_at),
      ),
    ),
    el(
      "p",
      { class: "rating" },
      item.reasons.map((r) => el("span", { class: "reason" }, r.name)),
      item.comment ? el("q", { class: "comment" }, item.comment) : null,
    ),
    deadlines(item),
    item.steps.length ? history(item.steps) : null,
    me.readOnly ? null : nextStep(item), // a supervisor looks: the hall's managers act
  );
  return node;
}

function deadlines(item) {
  // Found not valid and confirmed so: nothing to rectify or revisit, only the closing is left.
  const dismissed = item.stage === "close" && item.valid === false;
  const order = dismissed ? ["verify", "close"] : ["verify", "rectify", "revisit"];
  return el(
    "ol",
    { class: "deadlines" },
    order.map((step) => {
      const current = item.stage === step || (step === "verify" && item.stage === "confirm")
        || (step === "revisit" && item.stage === "close");
      const late = current && item.overdue;
      return el(
        "li",
        { class: `${current ? "current" : ""}${late ? " late" : ""}`, "data-step": step },
        both(STEPS[step][0], STEPS[step][1]),
        " ≤ ",
        el("time", { datetime: item.deadlines[step] }, item.deadlines[step]),
      );
    }),
  );
}

function history(steps) {
  return el(
    "ul",
    { class: "history" },
    steps.map((s) => {
      const verdict = s.valid === true ? "属实 valid" : s.valid === false ? "不属实 not valid" : null;
      return el(
        "li",
        { "data-step": s.step },
        el("time", { datetime: s.at }, when(s.at)),
        " ",
        el("b", {}, both(STEPS[s.step][0], STEPS[s.step][1])),
        ` · ${s.by_name}`,
        verdict ? ` · ${verdict}` : null,
        s.result ? ` · ${s.result.name} ${s.result.name_en}` : null,
        s.text ? el("span", { class: "text" }, ` · ${s.text}`) : null,
      );
    }),
  );
}

/** The form for the one step the case waits for. */
function nextStep(item) {
  const [zh, en] = STEPS[item.stage];
  const fields = [];
  let note = null;
  let blocked = false;
  switch (item.stage) {
    case "verify":
    case "confirm":
      fields.push(
        el("label", {}, el("input", { type: "radio", name: "valid", value: "true", required: true }), both("属实", "Valid")),
        el("label", {}, el("input", { type: "radio", name: "valid", value: "false" }), both("不属实", "Not valid")),
        el("input", { name: "text", maxlength: TEXT_MAX, placeholder: "理由（不属实时必填） / Why (needed if not valid)" }),
      );
      if (item.stage === "confirm") {
        blocked = item.verified_by === me.username;
        note = blocked
          ? both("您核实为不属实，需另一位管理员复核。", "You found it not valid: another manager confirms.")
          : both(`${item.verified_by_name ?? item.verified_by} 核实为不属实，请复核。`,
            `${item.verified_by_name ?? item.verified_by} found it not valid: confirm, or find it valid.`);
      }
      break;
    case "rectify":
      fields.push(el("input", { name: "text", maxlength: TEXT_MAX, required: true, placeholder: "整改措施 / What was done" }));
      break;
    case "revisit":
      fields.push(
        el(
          "select",
          { name: "result", required: true },
          el("option", { value: "" }, "回访结果 / Result…"),
          results.map((r) => el("option", { value: r.code }, `${r.name} / ${r.name_en}`)),
        ),
        el("input", { name: "text", maxlength: TEXT_MAX, placeholder: "备注 / Note" }),
      );
      break;
    case "close":
      fields.push(el("input", { name: "text", maxlength: TEXT_MAX, placeholder: "备注 / Note" }));
      break;
  }
  const form = el(
    "form",
    { class: "step", "data-step": item.stage },
    el("span", { class: "step-name" }, both(`下一步：${zh}`, `Next: ${en}`), ` ≤ ${item.due}`),
    note ? el("p", { class: "note" }, note) : null,
    fields,
    el("button", { type: "submit", disabled: blocked }, both(zh, en)),
    el("p", { class: "error", role: "alert" }),
  );
  const key = newKey(); // one per form: a retried submit steps once
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { step: item.stage, text: (data.get("text") ?? "").replace(/\s+/g, " ").trim() };
    if (data.has("valid")) body.valid = data.get("valid") === "true";
    if (data.get("result")) body.result = data.get("result");
    form.querySelector("button").disabled = true;
    try {
      await api(hall, `/cases/${encodeURIComponent(item.id)}/steps`, { method: "POST", body, key });
      await refresh();
    } catch (error) {
      form.querySelector(".error").replaceChildren(...both(...refusal(error)));
      form.querySelector("button").disabled = false;
      if (error.code === "case_step_refused") refresh(); // another manager stepped it first
    }
  });
  return form;
}

/** The cases closed lately, read-only: what became of them, and who closed them. */
function renderClosed(closed) {
  const rows = closed.map((c) => {
    const [level, levelEn] = LEVELS[c.level] ?? [String(c.level), String(c.level)];
    const outcome = c.valid === false
      ? both("不属实", "Not valid")
      : c.result ? both(c.result.name, c.result.name_en) : "—";
    return el(
      "tr",
      { "data-case": c.id },
      el("td", {}, el("time", { datetime: c.closed_at }, when(c.closed_at))),
      el("td", {}, c.number),
      el("td", {}, c.window),
      el("td", {}, c.staff_name),
      el("td", {}, both(level, levelEn)),
      el("td", {}, outcome),
      el("td", {}, c.closed_by_name),
    );
  });
  $("closed-rows").replaceChildren(...rows);
  $("closed-count").textContent = String(closed.length);
  $("no-closed").hidden = closed.length > 0;
}

function renderBreaches(breaches) {
  const rows = breaches.map((b) => {
    const [unit, unitEn] = UNITS[b.unit] ?? [b.unit, b.unit];
    const measure = b.measured === null ? "—" : measured(b, unit, unitEn);
    return el(
      "tr",
      { "data-breach": b.id, class: b.excused ? "excused" : "" },
      el("td", {}, el("time", { datetime: b.at }, when(b.at))),
      el("td", {}, b.window),
      el("td", {}, b.staff_name ?? "—"),
      el("td", {}, both(b.rule_name, b.rule_name_en)),
      el("td", { title: unitEn }, measure),
      el("td", {}, b.excused ? excused(b) : excuseForm(b)),
    );
  });
  $("breach-rows").replaceChildren(...rows);
  $("no-breaches").hidden = breaches.length > 0;
}

/** A measure against its limit: "40 / 15 分钟" for a time; a count rule fires at its limit, so
 * "3 / 3 次" would read as "within it": "3 次（≥ 3）" says what the limit is. */
function measured(b, unit, unitEn) {
  if (b.unit !== "no-shows") return `${round(b.measured)} / ${round(b.limit)} ${unit}`;
  return [`${round(b.measured)} ${unit}（≥ ${round(b.limit)}）`, " ", el("span", { lang: "en" }, `${round(b.measured)} (limit ${round(b.limit)})`)];
}

const round = (value) => (Number.isInteger(value) ? value : value.toFixed(1));

function excused(b) {
  return el("span", { class: "excused-note" }, both("已免责", "Excused"), `：${b.excuse_reason ?? ""} (${b.excused_by_name ?? b.excused_by ?? ""})`);
}

function excuseForm(b) {
  const form = el(
    "form",
    { class: "excuse", hidden: true },
    el("input", { name: "reason", required: true, maxlength: TEXT_MAX, placeholder: "免责理由 / Reason" }),
    el("button", { type: "submit" }, both("确定", "OK")),
    el("span", { class: "error", role: "alert" }),
  );
  const open = el("button", { type: "button", class: "excuse-open" }, both("免责", "Excuse"));
  open.addEventListener("click", () => {
    open.hidden = true;
    form.hidden = false;
    form.querySelector("input").focus();
    pauseBreaches = true;
  });
  const key = newKey();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const reason = new FormData(form).get("reason").replace(/\s+/g, " ").trim();
    try {
      await api(hall, `/breaches/${encodeURIComponent(b.id)}/excuse`, { method: "POST", body: { reason }, key });
      pauseBreaches = false;
      await refresh();
    } catch (error) {
      form.querySelector(".error").replaceChildren(...both(...refusal(error)));
    }
  });
  return [open, form];
}


for (const button of $("breach-days").querySelectorAll("button")) {
  button.addEventListener("click", () => {
    breachDays = Number(button.dataset.days);
    pauseBreaches = false;
    for (const other of $("breach-days").querySelectorAll("button")) {
      other.setAttribute("aria-pressed", String(other === button));
    }
    refresh();
  });
}

start((session) => {
  me = session;
  refresh();
  setInterval(refresh, POLL_MS);
});
