// What the manager pages (cases, reports) share beyond the login: the header's who-is-in, small
// DOM building (text only: visitors' comments never become markup), times in the hall's zone.
import { api, forget, requireLogin } from "./manager-session.js";

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

/** Log in (the shared form), show who is in, then `ready(session)`. */
export function start(ready) {
  const hall = settings.hall;
  requireLogin(hall, $("login"), (session) => {
    $("who-name").textContent = session.username;
    $("who").hidden = false;
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
