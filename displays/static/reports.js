// Reports: a period's figures (GET /api/halls/{hall}/reports) as tables, the charts the server
// draws (SVG, fetched with the token and put in the page), a printable layout and the CSV.
// The token goes in a header, never in a URL: the CSV is fetched and saved from a Blob.
import { api, managerSession, Refused } from "./manager-session.js";
import { $, both, el, saveFile, settings, start, when } from "./office.js";
import { asked, fillPicker, kindOf, periodName, setUp } from "./period.js";

const hall = settings.hall;
const CHARTS = ["hours", "days", "ratings", "breaches"];

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
  fillPicker($("picker"), report, kind, settings.today);
  $("picker").elements.by.value = report.by;
  await Promise.all(CHARTS.map((name) => chart(name, period, by)));
  $("status").textContent = `${when(report.generated_at)} 生成 / generated`;
  document.body.dataset.loaded = `${period}|${by}`;
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
    await saveFile(response, `report-${current.period}.csv`);
  } catch (error) {
    $("report-error").textContent = `CSV: ${error.message}`;
  }
}

const form = $("picker");
setUp(form);
form.addEventListener("submit", (event) => {
  event.preventDefault();
  load(asked(form), form.elements.by.value);
});
$("print").addEventListener("click", () => window.print());
$("csv").addEventListener("click", downloadCsv);
if (new URLSearchParams(location.search).get("print") === "1") document.body.classList.add("printing");

start(() => load(settings.period, settings.by));
