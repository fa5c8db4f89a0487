// The period picker of the report pages (a hall's and the region's): what the API's `period`
// names, how people say it, and the form's fields (templates/_period_fields.html).

const RELATIVE = {
  today: "day", yesterday: "day", "this-week": "week", "last-week": "week",
  "this-month": "month", "last-month": "month", "this-quarter": "quarter", "last-quarter": "quarter",
};
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
  "September", "October", "November", "December"];

export function isoWeek(day) {
  const d = new Date(`${day}T00:00:00Z`);
  const thursday = new Date(d);
  thursday.setUTCDate(d.getUTCDate() + 3 - ((d.getUTCDay() + 6) % 7));
  const year = thursday.getUTCFullYear();
  const first = new Date(Date.UTC(year, 0, 4));
  const week = 1 + Math.round(((thursday - first) / 86400000 - 3 + ((first.getUTCDay() + 6) % 7)) / 7);
  return `${year}-W${String(week).padStart(2, "0")}`;
}

/** What kind of period the API's `period` (as asked) is. */
export function kindOf(period) {
  const p = period.toLowerCase();
  if (RELATIVE[p]) return RELATIVE[p];
  if (p.includes("..")) return "range";
  if (/^\d{4}-\d{2}-\d{2}$/.test(p)) return "day";
  if (/^\d{4}-w\d{1,2}$/.test(p)) return "week";
  if (/^\d{4}-q[1-4]$/.test(p)) return "quarter";
  if (/^\d{4}-\d{1,2}$/.test(p)) return "month";
  if (/^\d{4}$/.test(p)) return "year";
  return "range";
}

/** The period of a report ({start, end}) as people say it, [zh, en]: "2026年11月 / November
 * 2026", not "this-month". */
export function periodName({ start, end }, kind) {
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

export function showKind(form, kind) {
  for (const label of form.querySelectorAll("[data-kind]")) label.hidden = label.dataset.kind !== kind;
}

/** The picker shows the report's period, whichever way it was asked; the other kinds start
 * from `today` when the report covers it (a day of "this month" is today, not the 1st). */
export function fillPicker(form, report, kind, today) {
  const day = report.start <= today && today <= report.end ? today : report.start;
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
  showKind(form, shown);
}

/** The period the form names, as the API reads it. */
export function asked(form) {
  const f = form.elements;
  switch (f.kind.value) {
    case "day": return f.day.value;
    case "week": return f.week.value;
    case "month": return f.month.value;
    case "quarter": return `${f.year.value}-Q${f.quarter.value}`;
    default: return `${f.from.value}..${f.to.value}`;
  }
}

/** A picker: its kind select shows that kind's fields; it starts on a month. */
export function setUp(form) {
  form.elements.kind.addEventListener("change", () => showKind(form, form.elements.kind.value));
  showKind(form, "month");
}
