// Reports: a period's figures (GET /api/halls/{hall}/reports) as tables, the charts the server
// draws (SVG, fetched with the token and put in the page), a printable layout and the CSV.
// The token goes in a header, never in a URL: the CSV is fetched and saved from a Blob.
import { api, managerSession, Refused } from "./manager-session.js";
import { $, both, el, settings, start, when } from "./office.js";

const hall = settings.hall;
const CHARTS = ["hours", "days", "ratings", "breaches"];
const PERIODS = {
  today: "day", yesterday: "day", "this-week": "week", "last-week": "week",
  "this-month": "month", "last-month": "month", "this-quarter": "quarter", "last-quarter": "quarter",
};

const pct = (share) => (share === null || share === undefined ? "—" : `${(share * 100).toFixed(1)}%`);
const min = (value) => (value === null || value === undefined ? "—" : value.toFixed(1));
const int = (value) => String(value);

// The columns of the table: [zh, en, value of a Figures, numeric?]
const COLUMNS = [
  ["取号", "Issued", (f) => int(f.issued)],
  ["办结", "Served", (f) => int(f.served)],
  ["过号", "No-shows", (f) => int(f.no_shows)],
  ["平均等候", "Wait mean", (f) => min(f.wait_mean)],
  ["等候P90", "Wait p90", (f) => min(f.wait_p90)],
  ["平均办理", "Service mean", (f) => min(f.service_mean)],
  ["按时叫号", "Within target", (f) => pct(f.within_target)],
  ["评价数", "Rated", (f) => int(f.rated)],
  ["参评率", "Participation", (f) => pct(f.participation)],
  ["满意率", "Satisfaction", (f) => pct(f.satisfaction)],
  ["差评率", "Bad rate", (f) => pct(f.bad_rate)],
  ["差评件", "Cases", (f) => int(f.cases)],
  ["反馈率", "Feedback", (f) => pct(f.feedback_rate)],
  ["整改率", "Rectified", (f) => pct(f.rectification_rate)],
  ["回访率", "Revisited", (f) => pct(f.revisit_rate)],
  ["逾期", "Overdue", (f) => int(f.overdue_cases)],
  ["违规(免责)", "Breaches (excused)", (f) => `${f.breaches} (${f.excused})`],
  ["暂停分钟", "Pause min", (f) => min(f.pause_minutes)],
  ["考核分", "Score", (f) => (f.score === null || f.score === undefined ? "—" : f.score.toFixed(1))],
];
const GROUPS = {
  zone: ["区域", "Zone"], category: ["业务", "Category"], window: ["窗口", "Window"], staff: ["人员", "Staff"],
};

let current = null; // {period, by} of the report shown

function query(period, by) {
  return `period=${encodeURIComponent(period)}&by=${encodeURIComponent(by)}`;
}

/** GET with the manager's token, answering the raw response (SVG, CSV). */
async function fetchAuthorized(path) {
  const session = managerSession(hall);
  const response = await fetch(`/api/halls/${hall}${path}`, {
    headers: session ? { Authorization: `Bearer ${session.token}` } : {},
  });
  if (!response.ok) {
    const text = await response.text();
    throw new Refused(response.status, text.startsWith("{") ? JSON.parse(text) : null);
  }
  return response;
}

async function load(period, by) {
  $("report-error").textContent = "";
  $("status").textContent = "加载中… / Loading…";
  let report;
  try {
    report = await api(hall, `/reports?${query(period, by)}`);
  } catch (error) {
    $("status").textContent = "";
    $("report-error").textContent = `${error.message} (${error.code})`;
    return;
  }
  current = { period, by };
  const url = new URL(location.href);
  url.searchParams.set("period", period);
  url.searchParams.set("by", by);
  history.replaceState(null, "", url);
  const kind = kindOf(report.period);
  render(report, kind);
  fillPicker(report, kind);
  await Promise.all(CHARTS.map((name) => chart(name, period, by)));
  $("status").textContent = `${when(report.generated_at)} 生成 / generated`;
  document.body.dataset.loaded = `${period}|${by}`;
}

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
  "September", "October", "November", "December"];

/** The period as people say it, [zh, en]: "2026年11月 / November 2026", not "this-month". */
function periodName(report, kind) {
  const { start, end } = report;
  const year = start.slice(0, 4);
  const month = Number(start.slice(5, 7));
  switch (kind) {
    case "day": return [start, start];
    case "week": {
      const [isoYear, week] = isoWeek(start).split("-W");
      return [`${isoYear} 第${Number(week)}周`, `week ${Number(week)}`];
    }
    case "month": return [`${year}年${month}月`, `${MONTHS[month - 1]} ${year}`];
    case "quarter": return [`${year}年第${Math.floor((month - 1) / 3) + 1}季度`, `${year} Q${Math.floor((month - 1) / 3) + 1}`];
    case "year": return [`${year}年`, year];
    default: return [`${start} – ${end}`, ""];
  }
}

function render(report, kind) {
  $("report").hidden = false;
  const [zh, en] = periodName(report, kind);
  const english = en && en !== zh ? [el("span", { lang: "en" }, ` / ${en}`)] : [];
  $("report-title").replaceChildren("报表 ", el("span", { lang: "en" }, "Report"), ` · ${zh}`, ...english);
  // The days it covers, unless the name says them already (a day, a range).
  $("report-span").textContent = kind === "day" || kind === "range" ? "" : `${report.start} – ${report.end}`;
  $("report-version").textContent = `截至日志版本 ${report.version} / figures up to journal version ${report.version}`;
  const t = report.total;
  const kpis = [
    ["取号", "Issued", int(t.issued)],
    ["办结", "Served", int(t.served)],
    ["平均等候(分)", "Mean wait (min)", min(t.wait_mean)],
    ["按时叫号", "Within target", pct(t.within_target)],
    ["满意率", "Satisfaction", pct(t.satisfaction)],
    ["参评率", "Participation", pct(t.participation)],
    ["反馈率", "Feedback", pct(t.feedback_rate)],
    ["整改率", "Rectification", pct(t.rectification_rate)],
    ["回访率", "Revisit", pct(t.revisit_rate)],
    ["违规", "Breaches", `${t.breaches}`],
  ];
  $("kpis").replaceChildren(
    ...kpis.map(([zh, en, value]) => el("div", { class: "kpi" }, el("b", {}, value), el("span", {}, zh, " ", el("span", { lang: "en" }, en)))),
  );
  const group = GROUPS[report.by] ?? ["", ""];
  const head = el(
    "tr",
    {},
    el("th", {}, both(group[0] || "全厅", group[1] || "Hall")),
    // The Chinese word whole (平均等候, never 平均等/候); the English below it may wrap.
    COLUMNS.map(([zh, en]) => el("th", { class: "n" }, el("span", { class: "zh" }, zh), " ", el("span", { lang: "en" }, en))),
  );
  const row = (f, total) =>
    el(
      "tr",
      { class: total ? "total" : "", "data-key": f.key },
      el("td", {}, total ? both("合计", "Total") : (f.name_en ? [f.name, " ", el("span", { lang: "en" }, f.name_en)] : f.name)),
      COLUMNS.map(([, , value]) => el("td", { class: "n" }, value(f))),
    );
  $("rows").tHead.replaceChildren(head);
  $("rows").tBodies[0].replaceChildren(...report.rows.map((f) => row(f, false)), row(t, true));
}

async function chart(name, period, by) {
  const box = document.querySelector(`.chart[data-chart="${name}"] .svg`);
  try {
    const response = await fetchAuthorized(`/reports/charts/${name}.svg?${query(period, by)}`);
    // Parsed as SVG and adopted: the server's drawing, never run as HTML.
    const parsed = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
    const svg = parsed.documentElement;
    if (svg.nodeName !== "svg") throw new Error("not an SVG");
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.setAttribute("role", "img");
    box.replaceChildren(document.importNode(svg, true));
  } catch (error) {
    box.replaceChildren(el("p", { class: "error" }, `图表不可用 / Chart unavailable: ${error.message}`));
  }
}

async function downloadCsv() {
  if (!current) return;
  try {
    const response = await fetchAuthorized(`/reports.csv?${query(current.period, current.by)}`);
    const disposition = response.headers.get("Content-Disposition") ?? "";
    const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? `report-${current.period}.csv`;
    const blob = await response.blob();
    const link = el("a", { href: URL.createObjectURL(blob), download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (error) {
    $("report-error").textContent = `CSV: ${error.message}`;
  }
}

// -- the picker ---------------------------------------------------------------------------------

const form = $("picker");

function showKind(kind) {
  for (const label of form.querySelectorAll("[data-kind]")) label.hidden = label.dataset.kind !== kind;
}

function isoWeek(day) {
  const d = new Date(`${day}T00:00:00Z`);
  const thursday = new Date(d);
  thursday.setUTCDate(d.getUTCDate() + 3 - ((d.getUTCDay() + 6) % 7));
  const year = thursday.getUTCFullYear();
  const first = new Date(Date.UTC(year, 0, 4));
  const week = 1 + Math.round(((thursday - first) / 86400000 - 3 + ((first.getUTCDay() + 6) % 7)) / 7);
  return `${year}-W${String(week).padStart(2, "0")}`;
}

/** What kind of period the API's `period` (as asked) is. */
function kindOf(period) {
  const p = period.toLowerCase();
  if (PERIODS[p]) return PERIODS[p];
  if (p.includes("..")) return "range";
  if (/^\d{4}-\d{2}-\d{2}$/.test(p)) return "day";
  if (/^\d{4}-w\d{1,2}$/.test(p)) return "week";
  if (/^\d{4}-q[1-4]$/.test(p)) return "quarter";
  if (/^\d{4}-\d{1,2}$/.test(p)) return "month";
  if (/^\d{4}$/.test(p)) return "year";
  return "range";
}

/** The picker shows the report's period, whichever way it was asked; the other kinds start
 * from the hall's today when the report covers it (a day of "this month" is today, not the 1st). */
function fillPicker(report, kind) {
  const day = report.start <= settings.today && settings.today <= report.end ? settings.today : report.start;
  const f = form.elements;
  const shown = kind === "year" ? "range" : kind; // no year in the picker: its range
  f.kind.value = shown;
  f.day.value = kind === "day" ? report.start : day;
  f.week.value = isoWeek(kind === "week" ? report.start : day);
  f.month.value = (kind === "month" ? report.start : day).slice(0, 7);
  const quarterOf = kind === "quarter" ? report.start : day;
  f.year.value = quarterOf.slice(0, 4);
  f.quarter.value = String(Math.floor((Number(quarterOf.slice(5, 7)) - 1) / 3) + 1);
  f.from.value = report.start;
  f.to.value = report.end;
  f.by.value = report.by;
  showKind(shown);
}

function asked() {
  const f = form.elements;
  switch (f.kind.value) {
    case "day": return f.day.value;
    case "week": return f.week.value;
    case "month": return f.month.value;
    case "quarter": return `${f.year.value}-Q${f.quarter.value}`;
    default: return `${f.from.value}..${f.to.value}`;
  }
}

form.elements.kind.addEventListener("change", () => showKind(form.elements.kind.value));
form.addEventListener("submit", (event) => {
  event.preventDefault();
  load(asked(), form.elements.by.value);
});
$("print").addEventListener("click", () => window.print());
$("csv").addEventListener("click", downloadCsv);
if (new URLSearchParams(location.search).get("print") === "1") document.body.classList.add("printing");
showKind("month");

start(() => load(settings.period, settings.by));
