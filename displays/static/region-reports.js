// The region's reports (/region/reports): a period's figures of every hall, by city, town and
// village (GET /api/region/reports), the halls ranked weakest first, and the CSV. On the city
// view's login (its sessionStorage key): without one, the city view logs in and comes back.
import { $, both, el, saveFile, settings, when } from "./office.js";
import { asked, fillPicker, kindOf, periodName, setUp } from "./period.js";

const key = `hall.region.${settings.region}`;
const KINDS = { city: ["市", "City"], town: ["镇", "Town"], village: ["村", "Village"] };

const pct = (share) => (share === null || share === undefined ? "—" : `${(share * 100).toFixed(1)}%`);
const fixed = (digits) => (value) => (value === null || value === undefined ? "—" : value.toFixed(digits));

// A row's figures: a hall's report total with its rating mean and bad count, or a unit's sums
// (which have no waits nor within-target rate: those need each ticket).
const COLUMNS = [
  ["取号", "Issued", (f) => String(f.issued)],
  ["办结", "Served", (f) => String(f.served)],
  ["平均等候", "Wait mean (min)", (f) => fixed(1)(f.wait_mean)],
  ["等候P90", "Wait p90 (min)", (f) => fixed(1)(f.wait_p90)],
  ["按时叫号", "Within target", (f) => pct(f.within_target)],
  ["评价数", "Rated", (f) => String(f.rated)],
  ["平均分", "Mean (1-5)", (f) => fixed(2)(f.rating_mean)],
  ["差评", "Bad", (f) => String(f.bad)],
  ["满意率", "Satisfaction", (f) => pct(f.satisfaction)],
  ["差评件", "Cases", (f) => String(f.cases)],
  ["违规", "Breaches", (f) => String(f.breaches)],
];
// How halls are ranked, weakest first: [zh, en, value, worst is low?, shown as].
const RANKS = {
  within_target: ["按时叫号率", "Within target", (f) => f.within_target, true, pct],
  satisfaction: ["满意率", "Satisfaction", (f) => f.satisfaction, true, pct],
  wait_mean: ["平均等候", "Mean wait", (f) => f.wait_mean, false, (v) => `${fixed(1)(v)} 分 min`],
  bad_rate: ["差评率", "Bad rate", (f) => f.bad_rate, false, pct],
};

let current = null; // the report shown

function session() {
  return JSON.parse(sessionStorage.getItem(key) ?? "null");
}

/** To the city view's login, which brings the supervisor back here. */
function logIn() {
  location.replace(`/region?next=${encodeURIComponent(location.pathname + location.search)}`);
}

async function fetchAuthorized(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${session()?.token}` } });
  if (response.status === 401) {
    sessionStorage.removeItem(key);
    logIn();
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(`${body?.message ?? `HTTP ${response.status}`}${body?.error ? ` (${body.error})` : ""}`);
  }
  return response;
}

const hallFigures = (hall) => ({ ...hall.figures, rating_mean: hall.rating_mean, bad: hall.bad });

/** Every hall of the report with its units' names from the city down. */
function everyHall(unit, path = [], found = []) {
  const here = [...path, unit];
  for (const hall of unit.halls) found.push({ hall, path: here });
  for (const child of unit.units) everyHall(child, here, found);
  return found;
}

function hallName(hall, period) {
  // Its own report, on this login (read-only), for the same period.
  const href = `/manage/${encodeURIComponent(hall.id)}/reports?period=${encodeURIComponent(period)}`;
  return [el("a", { href }, hall.name), " ", el("span", { lang: "en" }, hall.name_en)];
}

function unitRows(unit, depth, period, rows) {
  const [zh, en] = KINDS[unit.kind];
  rows.push(el("tr", { class: `unit ${unit.kind} depth-${depth}`, "data-unit": unit.id },
    el("td", {}, el("span", { class: "kind" }, zh), unit.name, " ", el("span", { lang: "en" }, `${en} · ${unit.name_en}`)),
    COLUMNS.map(([, , value]) => el("td", { class: "n" }, value(unit.total)))));
  for (const hall of unit.halls) {
    rows.push(el("tr", { class: `hall depth-${depth + 1}`, "data-hall": hall.id },
      el("td", {}, hallName(hall, period)),
      COLUMNS.map(([, , value]) => el("td", { class: "n" }, value(hallFigures(hall))))));
  }
  for (const child of unit.units) unitRows(child, depth + 1, period, rows);
}

function renderRanking() {
  const [zh, en, value, lowWorst, shown] = RANKS[$("rank-by").value];
  const halls = everyHall(current.city).map((h) => ({ ...h, f: hallFigures(h.hall) }));
  const known = halls.filter((h) => value(h.f) !== null && value(h.f) !== undefined);
  known.sort((a, b) => (lowWorst ? value(a.f) - value(b.f) : value(b.f) - value(a.f)));
  const scale = lowWorst ? 1 : Math.max(...known.map((h) => value(h.f)), 1e-9);
  const rows = [...known, ...halls.filter((h) => !known.includes(h))].map((h, index) => {
    const v = value(h.f);
    const width = v === null || v === undefined ? 0 : Math.min(100, (v / scale) * 100);
    return el("tr", { "data-hall": h.hall.id },
      el("td", { class: "n" }, v === null || v === undefined ? "—" : String(index + 1)),
      el("td", {}, hallName(h.hall, current.period),
        el("span", { class: "path" }, h.path.map((u) => u.name).join(" › "))),
      el("td", { class: "bar-cell" },
        v === null || v === undefined ? null : el("span", { class: "track" },
          el("span", { class: `bar${lowWorst ? "" : " inverse"}`, style: `width: ${width.toFixed(1)}%` })),
        el("b", {}, v === null || v === undefined ? "— 无数据 no data" : shown(v))),
      el("td", { class: "n" }, String(h.f.issued)),
      el("td", { class: "n" }, pct(h.f.satisfaction)),
      el("td", { class: "n" }, String(h.f.bad)),
      el("td", { class: "n" }, String(h.f.breaches)));
  });
  $("ranking").tHead.replaceChildren(el("tr", {},
    el("th", { class: "n" }, both("名次", "Rank")),
    el("th", {}, both("大厅", "Hall")),
    el("th", { class: "bar-head" }, both(zh, en)),
    ...[["取号", "Issued"], ["满意率", "Satisfaction"], ["差评", "Bad"], ["违规", "Breaches"]]
      .map(([z, e]) => el("th", { class: "n" }, both(z, e)))));
  $("ranking").tBodies[0].replaceChildren(...rows);
}

function render(report) {
  current = report;
  const kind = kindOf(report.period);
  const [zh, en] = periodName(report, kind);
  const english = en && en !== zh ? [el("span", { lang: "en" }, ` / ${en}`)] : [];
  $("report-title").replaceChildren("报表 ", el("span", { lang: "en" }, "Report"), ` · ${zh}`, ...english);
  $("report-span").textContent = kind === "day" || kind === "range" ? "" : `${report.start} – ${report.end}`;
  $("units").tHead.replaceChildren(el("tr", {}, el("th", {}, both("名称", "Name")),
    COLUMNS.map(([z, e]) => el("th", { class: "n" }, el("span", { class: "zh" }, z), " ", el("span", { lang: "en" }, e)))));
  const rows = [];
  unitRows(report.city, 0, report.period, rows);
  $("units").tBodies[0].replaceChildren(...rows);
  renderRanking();
  fillPicker($("picker"), report, kind, settings.today);
  $("report").hidden = false;
}

async function load(period) {
  $("report-error").textContent = "";
  $("status").textContent = "加载中… / Loading…";
  let report;
  try {
    const response = await fetchAuthorized(`/api/region/reports?period=${encodeURIComponent(period)}`);
    report = await response.json();
  } catch (error) {
    $("status").textContent = "";
    $("report-error").textContent = error.message;
    return;
  }
  const url = new URL(location.href);
  url.searchParams.set("period", period);
  history.replaceState(null, "", url);
  for (const button of $("quick").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.period === period));
  }
  render(report);
  $("status").textContent = `${when(report.generated_at)} 生成 / generated`;
  document.body.dataset.loaded = period;
}

async function downloadCsv() {
  if (!current) return;
  try {
    const response = await fetchAuthorized(`/api/region/reports.csv?period=${encodeURIComponent(current.period)}`);
    await saveFile(response, `report-${settings.region}.csv`);
  } catch (error) {
    $("report-error").textContent = `CSV: ${error.message}`;
  }
}

$("rank-by").replaceChildren(...Object.entries(RANKS).map(([value, [zh, en]]) => el("option", { value }, `${zh} ${en}`)));
$("rank-by").addEventListener("change", renderRanking);
const form = $("picker");
setUp(form);
form.addEventListener("submit", (event) => {
  event.preventDefault();
  load(asked(form));
});
for (const button of $("quick").querySelectorAll("button")) {
  button.addEventListener("click", () => load(button.dataset.period));
}
$("print").addEventListener("click", () => window.print());
$("csv").addEventListener("click", downloadCsv);
$("logout").addEventListener("click", async () => {
  const kept = session();
  sessionStorage.removeItem(key);
  if (kept) {
    await fetch("/api/region/logout", { method: "POST", headers: { Authorization: `Bearer ${kept.token}` } }).catch(() => null);
  }
  location.assign("/region");
});

const kept = session();
if (!kept) logIn();
else {
  $("who-name").textContent = kept.name;
  $("who").hidden = false;
  $("main").hidden = false;
  load(settings.period);
}
