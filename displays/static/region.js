// The city view (/region): a supervisor logs in, then the page follows /ws/region through the
// shared feed client and redraws the table on each view (the feed sends whole views only).

import { openFeed, showState } from "/static/feed.js";

const settings = JSON.parse(document.getElementById("settings").textContent);
const key = `hall.region.${settings.region}`;
const KINDS = { city: ["市", "City"], town: ["镇", "Town"], village: ["村", "Village"] };
let feed = null;

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

const number = (value, digits = 0) => (value === null || value === undefined ? "–" : value.toFixed(digits));

function cells(load) {
  return [
    el("td", { className: "num", textContent: String(load.waiting) }),
    el("td", { className: "num", textContent: number(load.longest_wait_minutes, 1) }),
    el("td", { className: "num", textContent: `${load.windows_open} / ${load.windows}` }),
    el("td", { className: "num", textContent: String(load.served) }),
    el("td", { className: "num", textContent: String(load.rated) }),
    el("td", { className: "num", textContent: number(load.rating_mean, 2) }),
    el("td", { className: "num", textContent: String(load.bad) }),
  ];
}

function unitRows(unit, depth, rows) {
  const [zh, en] = KINDS[unit.kind];
  const name = el("td", { className: "name" }, el("span", { className: "kind", textContent: zh }), unit.name);
  if (unit.total.halls_over_target) {
    name.append(el("span", { className: "over-count", textContent: `${unit.total.halls_over_target} 厅超时 / over target` }));
  }
  name.append(el("small", { lang: "en", textContent: `${en} · ${unit.name_en}` }));
  rows.push(el("tr", { className: `unit ${unit.kind} depth-${depth}` }, name, ...cells(unit.total), el("td")));
  for (const hall of unit.halls) {
    const link = el("a", { href: `/manage/${encodeURIComponent(hall.id)}`, textContent: hall.name });
    const hallName = el("td", { className: "name" }, link, el("small", { lang: "en", textContent: hall.name_en }));
    const role = hall.leading ? "写入 writer" : "跟随 follower";
    const copy = el("td", { className: `copy${hall.stale ? " stale" : ""}`, textContent: `${role} · v${hall.version}${hall.stale ? " · 未更新 stale" : ""}` });
    const row = el("tr", { className: `hall depth-${depth + 1}${hall.over_target ? " over" : ""}` }, hallName, ...cells(hall), copy);
    row.dataset.hall = hall.id;
    rows.push(row);
  }
  for (const child of unit.units) unitRows(child, depth + 1, rows);
}

function render(view, frame) {
  const rows = [];
  unitRows(view.city, 0, rows);
  $("rows").replaceChildren(...rows);
  const at = new Date(frame.now);
  $("updated").textContent = at.toLocaleTimeString("zh-CN", { hour12: false, timeZone: settings.timezone });
  $("updated").dateTime = frame.now;
}

function showLogin(message = "") {
  feed?.close();
  feed = null;
  $("city").hidden = true;
  $("who").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login").querySelector(".login-error").textContent = message;
}

function start(session) {
  $("login").hidden = true;
  $("city").hidden = false;
  $("who").hidden = false;
  $("who").textContent = session.name;
  $("logout").hidden = false;
  feed = openFeed(settings.feed, {
    token: session.token,
    apply: (view) => view, // never sent a delta: whole views only
    onFrame: ({ view, frame }) => render(view, frame),
    onState: (state, detail) => {
      if (state === "refused" && detail.code === 4401) {
        sessionStorage.removeItem(key);
        showLogin("登录已失效，请重新登录 / Your session has ended: log in again");
        return;
      }
      showState(state, detail);
    },
  });
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const data = new FormData(form);
  const error = form.querySelector(".login-error");
  error.textContent = "";
  const response = await fetch("/api/region/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ username: data.get("username"), password: data.get("password") }),
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    error.textContent = `登录失败 / Login failed: ${body?.message ?? response.status}`;
    return;
  }
  const session = { token: body.token, name: body.name };
  sessionStorage.setItem(key, JSON.stringify(session));
  form.reset();
  // Sent here to log in by another region page (its reports): back there, on this site only.
  const next = new URLSearchParams(location.search).get("next") ?? "";
  if (next.startsWith("/region/")) {
    location.assign(next);
    return;
  }
  start(session);
});

$("logout").addEventListener("click", async () => {
  const session = JSON.parse(sessionStorage.getItem(key) ?? "null");
  sessionStorage.removeItem(key);
  if (session) {
    await fetch("/api/region/logout", { method: "POST", headers: { Authorization: `Bearer ${session.token}` } }).catch(() => null);
  }
  showLogin();
});

const kept = JSON.parse(sessionStorage.getItem(key) ?? "null");
if (kept) start(kept);
else showLogin();
