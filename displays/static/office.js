// What the manager pages (cases, reports) share beyond the login: the header's who-is-in, small
// DOM building (text only: visitors' comments never become markup), times in the hall's zone.
import { api, forget, requireLogin, whoIs } from "./manager-session.js";

export const settings = JSON.parse(document.getElementById("settings").textContent);
export const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Chinese, then English in a lang="en" span. */
export const both = (zh, en) => [zh, " ", el("span", { lang: "en" }, en)];

const formats = {};
/** A time of the hall (its time zone), e.g. "11-30 14:05". */
export function when(iso, options = { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }) {
  const key = JSON.stringify(options);
  formats[key] ??= new Intl.DateTimeFormat("zh-CN", { timeZone: settings.timezone, hour12: false, ...options });
  return formats[key].format(new Date(iso));
}

/** Save a fetched file (a CSV) under the name its Content-Disposition gives, else `fallback`:
 * the token went in a header, so the browser cannot fetch the link itself. */
export async function saveFile(response, fallback) {
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? fallback;
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

/** Log in (the shared form), show who is in, then `ready(session)`. */
export function start(ready) {
  const hall = settings.hall;
  requireLogin(hall, $("login"), (session) => {
    $("who-name").replaceChildren(...whoIs(session));
    $("who").hidden = false;
    $("logout").hidden = session.readOnly === true; // the city view's login: log out there
    $("main").hidden = false;
    ready(session);
  });
  $("logout").addEventListener("click", async () => {
    try {
      await api(hall, "/logout", { method: "POST", body: {} });
    } finally {
      forget(hall);
      location.reload();
    }
  });
}

// What a manager reads when the hall refuses a form, in both languages. invalid_input says
// several things: its message picks the words. Codes not here show the server's own message.
const INVALID = {
  "say why it is not valid": ["请填写不属实的理由", "Say why it is not valid"],
  "say what was done": ["请填写整改措施", "Say what was done"],
};
const REFUSALS = {
  case_step_refused: (d) => [
    `案件已进入下一步（${d?.stage ?? "?"}），页面已刷新`,
    `The case has moved on (now: ${d?.stage ?? "?"}); the page shows it again`,
  ],
  second_manager_needed: ["需另一位管理员复核", "Another manager must confirm"],
  unknown_case: ["案件已结案或不存在", "The case is closed or unknown"],
  unknown_breach: ["没有此违规记录", "No such breach"],
  already_excused: ["已免责", "Already excused"],
  unknown_reason: ["请选择回访结果", "Choose a revisit result"],
  invalid_request: (_, message) =>
    /length/.test(message ?? "")
      ? [`文字过长：最多 ${settings.text_max} 字`, `Too long: at most ${settings.text_max} characters`]
      : /pattern/.test(message ?? "")
        ? ["文字含不可用的字符（如换行）", "The text has characters it cannot hold (e.g. a line break)"]
        : ["填写有误，请检查", "Something in the form is not right: check it"],
  unauthorized: ["登录已失效：请重新登录", "Your session has ended: log in again"],
  forbidden: ["无权执行此操作（仅管理员）", "Managers only"],
  busy: ["系统繁忙：请稍后再试", "The hall is busy: try again in a moment"],
  unavailable: ["系统暂不可用（日志不可写）：请稍后再试", "The hall's journal is unavailable: try again in a moment"],
};

/** [zh, en] for a refusal (a Refused from manager-session.js, or any error). */
export function refusal(error) {
  const found = error.code === "invalid_input" ? INVALID[error.message] : REFUSALS[error.code];
  if (typeof found === "function") return found(error.detail, error.message);
  if (found) return found;
  if (!error.code) return ["未能连接服务器：请重试", `Could not reach the hall: ${error.message}`];
  return ["操作被拒绝", `${error.message}${error.code ? ` (${error.code})` : ""}`];
}
