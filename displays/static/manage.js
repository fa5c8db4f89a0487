// The manager's live view: log in, follow the manager feed, act through the API. What is shown
// comes from the feed only; an action's answer is shown as a message and its effect arrives by
// the feed like anyone else's.
import { formatter, openFeed, showState } from "/static/feed.js";
import {
  Refused,
  api,
  forget,
  managerSession,
  newKey,
  requireLogin,
  sessionEnded,
  whoIs,
} from "/static/manager-session.js";

const settings = JSON.parse(document.getElementById("settings").textContent);
const hall = settings.hall;
const names = new Map(settings.categories.map(([id, name, en]) => [id, { name, en }]));
const $ = (id) => document.getElementById(id);
const clock = formatter(settings.timezone, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const STATES = {
  open: ["空闲", "idle"],
  calling: ["呼叫中", "calling"],
  serving: ["办理中", "serving"],
  paused: ["暂停", "paused"],
  closed: ["关闭", "closed"],
};

let feed = null;
let view = null;
let readOnly = false; // a region supervisor's login: look, never act
let editing = null; // the window whose profile the form holds: kept while the manager edits it

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const en = (text) => el("span", { lang: "en" }, text);

function minutesSince(iso) {
  if (!iso || !feed) return null;
  return Math.max(0, (feed.serverNow() - Date.parse(iso)) / 60000);
}

function duration(iso) {
  const minutes = minutesSince(iso);
  if (minutes === null) return "—";
  if (minutes < 1) return `${Math.floor(minutes * 60)}s`;
  if (minutes < 60) return `${Math.floor(minutes)}′`;
  return `${Math.floor(minutes / 60)}h${String(Math.floor(minutes % 60)).padStart(2, "0")}`;
}

const percent = (share) => (share === null ? "—" : `${Math.round(share * 100)}%`);
const number = (value) => (value === null ? "—" : String(value));
/** "3（免责 1）3 (1 excused)": a bare "3 (1)" said nothing of what the 1 is. */
const excusedToo = (count, excused) =>
  excused ? [String(count), el("small", { class: "excused" }, `（免责 ${excused}）`, en(`(${excused} excused)`))] : count;

// -- rendering --------------------------------------------------------------------------------

function renderLoad() {
  const rows = [];
  for (const zone of view.zones) {
    rows.push(
      el("tr", { class: "zone" }, el("th", { colspan: "5" }, zone.name, " ", en(zone.name_en),
        el("span", { class: "zone-waiting" }, ` ${zone.waiting} 人 `, en("waiting")))),
    );
    for (const c of zone.categories) {
      const waited = minutesSince(c.oldest);
      const share = waited === null ? 0 : Math.min(1, waited / (c.target_minutes * 2));
      const bar = el("div", { class: "bar" }, el("i", { style: `width:${(share * 100).toFixed(1)}%` }),
        el("b", { class: "target" }));
      const level = c.over_target ? "over" : waited !== null && waited > c.target_minutes * 0.75 ? "near" : "ok";
      rows.push(
        el("tr", { class: `cat level-${level}${c.over_length ? " long" : ""}`, dataset: { id: c.id } },
          el("td", {}, el("span", { class: "prefix" }, c.prefix), c.name, el("small", { lang: "en" }, c.name_en)),
          el("td", { class: "num waiting" }, c.waiting),
          el("td", { class: "wait" }, bar,
            el("span", { class: "wait-text" }, waited === null ? "—" : Math.floor(waited), " / ", c.target_minutes)),
          el("td", { class: "num" }, c.estimate_minutes === null ? "无窗口" : `${Math.round(c.estimate_minutes)}′`),
          el("td", { class: "num" }, c.windows)),
      );
    }
  }
  $("load").replaceChildren(...rows);
}

function renderWindows() {
  $("windows").replaceChildren(
    ...view.windows.map((w) => {
      const [zh, english] = STATES[w.state] ?? [w.state, w.state];
      const detail =
        w.state === "paused" && w.pause_name
          ? [w.pause_name, " ", en(w.pause_name_en)]
          : w.state === "open" && w.callable
            ? [`${w.callable} 人可叫 `, en("can call")]
            : [];
      return el("li", {
          class: `win s-${w.state}${String(w.id) === $("act-window").value ? " selected" : ""}`,
          dataset: { id: w.id },
          onclick: () => selectWindow(w.id),
        },
        el("div", { class: "win-head" }, el("b", {}, w.name), el("span", { class: "state" }, zh, " ", en(english))),
        el("div", { class: "win-staff" }, w.staff_name ?? "—", w.staff ? el("small", {}, ` ${w.staff}`) : null),
        el("div", { class: "win-ticket" }, w.number ?? ""),
        el("div", { class: "win-foot" }, el("span", { class: "since", dataset: { since: w.since ?? "" } }, duration(w.since)),
          el("span", { class: "detail" }, ...detail)),
      );
    }),
  );
}

function renderAlerts() {
  const open = view.alerts.filter((a) => !a.acknowledged).length;
  $("alert-count").textContent = String(open);
  $("alert-count").classList.toggle("none", open === 0);
  $("alerts-empty").hidden = view.alerts.length > 0;
  $("alerts").replaceChildren(
    ...view.alerts.map((a) =>
      el("li", { class: `alert sev-${a.severity} kind-${a.kind}${a.acknowledged ? " acknowledged" : ""}`, dataset: { id: a.id } },
        el("div", { class: "alert-text" }, a.text, el("br"), en(a.text_en)),
        el("div", { class: "alert-side" },
          el("span", { class: "since" }, a.since ? duration(a.since) : ""),
          a.acknowledged
            ? el("span", { class: "acked" }, "已知悉 ", en(`seen by ${a.by}`))
            : readOnly
              ? null // a supervisor looks: the hall's managers acknowledge
              : el("button", { type: "button", class: "ack", onclick: () => acknowledge(a.id) }, "知悉 ", en("Acknowledge"))),
      ),
    ),
  );
}

function renderFigures() {
  const f = view.figures;
  $("day").textContent = view.day ?? "";
  const tiles = [
    ["取号", "Issued", f.issued],
    ["已办结", "Served", f.served],
    ["过号", "No-shows", f.no_shows],
    ["等候中", "Waiting", f.waiting],
    ["平均等候", "Mean wait", f.wait_mean_minutes === null ? "—" : `${f.wait_mean_minutes}′`],
    ["达标率", "Within target", percent(f.within_target)],
    ["评价数", "Ratings", f.rated],
    ["满意率", "Satisfaction", percent(f.satisfaction)],
    ["差评", "Bad ratings", f.bad, f.bad > 0],
    ["整改中", "Open cases", f.cases_open],
    ["逾期", "Overdue", f.cases_overdue, f.cases_overdue > 0],
    ["违纪", "Breaches", excusedToo(f.breaches, f.breaches_excused), f.breaches > 0],
  ];
  $("figures").replaceChildren(
    ...tiles.map(([zh, english, value, bad]) =>
      el("div", { class: `tile${bad ? " bad" : ""}` }, el("dt", {}, zh, " ", en(english)), el("dd", {}, Array.isArray(value) ? value : number(value))),
    ),
  );
  $("devices-box").hidden = view.devices.length === 0;
  $("devices").replaceChildren(
    ...view.devices.map((d) => el("li", {}, `${d.id} (${d.kind}${d.window ? ` · ${d.window}` : ""}): ${d.status} · ${duration(d.since)}`)),
  );
}

// Times that run on the clock, without a frame.
function tick() {
  if (feed) $("clock").textContent = clock.format(feed.serverNow());
  if (!view) return;
  for (const node of document.querySelectorAll("#windows .since")) node.textContent = duration(node.dataset.since || null);
  renderLoad();
}

// -- actions ----------------------------------------------------------------------------------

function say(text, bad = false) {
  $("message").textContent = text;
  $("message").classList.toggle("bad", bad);
}

async function act(path, options, done) {
  try {
    const answer = await api(hall, path, { key: newKey(), ...options });
    done?.(answer);
    return answer;
  } catch (refused) {
    if (refused instanceof Refused && refused.status === 401) {
      sessionEnded(hall);
      location.reload();
    }
    say(`未完成 / Refused: ${refused.message}`, true);
    return null;
  }
}

function acknowledge(alert) {
  act(`/alerts/${encodeURIComponent(alert)}/acknowledge`, { method: "POST", body: {} }, () =>
    say("已知悉 / Acknowledged"),
  );
}

function selectedWindow() {
  return view?.windows.find((w) => String(w.id) === $("act-window").value) ?? null;
}

function selectWindow(id) {
  $("act-window").value = String(id);
  editing = null;
  renderActions();
  renderWindows();
}

// The profile form: checked categories first, in the window's order; ↑ ↓ move one.
function renderProfile(order, checked) {
  $("profile").replaceChildren(
    ...order.map((id, index) =>
      el("li", { dataset: { id } },
        el("label", { title: `${names.get(id)?.name ?? id} ${names.get(id)?.en ?? ""}` }, el("input", { type: "checkbox", value: id, ...(checked.has(id) ? { checked: "" } : {}) }),
          ` ${names.get(id)?.name ?? id} `, el("small", { lang: "en" }, names.get(id)?.en ?? "")),
        el("span", { class: "move" },
          el("button", { type: "button", class: "up", title: "上移 Up", disabled: index === 0 ? "" : null, onclick: () => move(index, -1) }, "↑"),
          el("button", { type: "button", class: "down", title: "下移 Down", disabled: index === order.length - 1 ? "" : null, onclick: () => move(index, 1) }, "↓")),
      ),
    ),
  );
}

function profileForm() {
  const items = [...$("profile").querySelectorAll("li")];
  return {
    order: items.map((li) => li.dataset.id),
    checked: items.filter((li) => li.querySelector("input").checked).map((li) => li.dataset.id),
  };
}

function move(index, by) {
  const { order, checked } = profileForm();
  const to = index + by;
  if (to < 0 || to >= order.length) return;
  [order[index], order[to]] = [order[to], order[index]];
  editing = $("act-window").value;
  renderProfile(order, new Set(checked));
}

function renderActions() {
  const w = selectedWindow();
  if (!w) return;
  const [zh, english] = STATES[w.state] ?? [w.state, w.state];
  $("act-state").textContent = `${zh} ${english}${w.staff_name ? ` · ${w.staff_name}` : ""}`;
  $("act-open").disabled = w.state !== "closed";
  $("act-close").disabled = w.state === "closed";
  $("whatif-open-box").hidden = w.state !== "closed";
  if (editing !== String(w.id)) {
    const rest = settings.categories.map(([id]) => id).filter((id) => !w.profile.includes(id));
    renderProfile([...w.profile, ...rest], new Set(w.profile));
  }
}

function chosenProfile() {
  const { order, checked } = profileForm();
  const set = new Set(checked);
  return order.filter((id) => set.has(id));
}

// A longest wait over the next hour: null is people waiting or expected and no window serving
// them; a capped figure is where the forecast stopped following someone still waiting.
const longest = (minutes, capped) =>
  minutes === null ? "无窗口 no window" : `${capped ? "≥\u00a0" : ""}${Math.round(minutes)}\u00a0min`;

// The figures whenever the answer has them: nobody waiting now may still be expected within
// the hour (0 → 0 is nobody waiting or expected).
function describeWait(wait) {
  const who = `${wait.name} ${wait.name_en}`;
  if (wait.waiting === 0 && wait.before === 0 && wait.after === 0) return `${who}: 无人等候 no one waiting or expected`;
  return `${who}: ${wait.waiting} 人等候 waiting, 最长等候 longest wait ${longest(wait.before, wait.before_capped)} → ${longest(wait.after, wait.after_capped)} (目标 target ${wait.target_minutes} min)`;
}

// Red only for a wait that really grows: no change is neither.
function waitClass(wait) {
  if (wait.after === wait.before) return "same";
  if (wait.after === null) return "worse";
  return wait.before === null || wait.after < wait.before ? "better" : "worse";
}

const profileText = (ids) => [
  ids.map((id) => names.get(id)?.name ?? id).join(" › "),
  " ",
  en(ids.map((id) => names.get(id)?.en ?? id).join(" › ")),
];

// What a suggestion does to its window: opened or changed, and its profile, said whole (two
// suggestions for one window differ only there).
function describeSuggestion(s) {
  const w = view.windows.find((x) => String(x.id) === s.window);
  const added = w ? s.categories.filter((id) => !w.profile.includes(id)) : [];
  return [
    el("b", {}, `${s.open ? "开窗" : "调整"} ${w?.name ?? s.window} `, en(`${s.open ? "open" : "change"} ${w?.name_en ?? s.window}`)),
    el("span", { class: `suggested-profile${s.profile_changed ? " changed" : ""}` },
      s.profile_changed ? ["，业务改为 ", en("with the profile "), ...profileText(s.categories)] : ["，业务不变 ", en("as it is: "), ...profileText(s.categories)],
      added.length ? ["（新增 ", ...profileText(added), el("span", { lang: "en" }, " added"), "）"] : []),
    el("br"),
    describeWait(s.wait),
  ];
}

// A suggestion clicked: the what-if form holds that exact change (window, profile, open), for
// 预估 What if or 应用 Apply.
function fillWhatIf(s) {
  $("act-window").value = s.window;
  editing = s.window; // the feed's next frame must not put the window's own profile back
  renderActions();
  const rest = settings.categories.map(([id]) => id).filter((id) => !s.categories.includes(id));
  renderProfile([...s.categories, ...rest], new Set(s.categories));
  $("whatif-open").checked = s.open;
  renderWindows();
  say("已填入建议，可预估或应用 / The suggestion is in the form: What if, or Apply");
}

function wireActions() {
  $("act-window").replaceChildren(...view.windows.map((w) => el("option", { value: w.id }, `${w.name} ${w.name_en}`)));
  $("act-staff").replaceChildren(...settings.staff.map(([username, name]) => el("option", { value: username }, `${name} (${username})`)));
  $("act-window").addEventListener("change", () => selectWindow($("act-window").value));
  $("profile").addEventListener("change", () => (editing = $("act-window").value));
  $("act-open").addEventListener("click", () =>
    act(`/windows/${$("act-window").value}/open`, { method: "POST", body: { staff: $("act-staff").value } }, () =>
      say("已开窗 / Window opened")),
  );
  $("act-close").addEventListener("click", () => {
    const w = selectedWindow();
    if (!confirm(`关闭 ${w.name}？当前号码将重新排队。\nClose ${w.name_en}? A ticket it holds waits again.`)) return;
    act(`/windows/${w.id}/force-close`, { method: "POST", body: { note: "closed from the live view" } }, () =>
      say("已关窗 / Window closed"));
  });
  $("profile-apply").addEventListener("click", () => {
    const categories = chosenProfile();
    if (!categories.length) return say("至少选一项业务 / Pick at least one category", true);
    act(`/windows/${$("act-window").value}/profile`, { method: "PUT", body: { categories } }, () => {
      editing = null;
      say("业务配置已更新 / Profile changed");
    });
  });
  $("whatif").addEventListener("click", () => {
    const w = selectedWindow();
    const categories = chosenProfile();
    const open = w.state === "closed" && $("whatif-open").checked;
    const body = { window: String(w.id), open };
    if (categories.length && categories.join() !== w.profile.join()) body.categories = categories;
    else if (!open) return say("先改业务配置或勾选开窗 / Change the profile or tick 'open' first", true);
    act("/what-if", { method: "POST", body }, (answer) => {
      $("whatif-result").replaceChildren(
        el("p", {}, `${open ? "开窗" : "调整"} ${w.name}`, " ", en(`${open ? "open" : "change"} ${w.name_en}`)),
        ...answer.waits.map((wait) => el("p", { class: waitClass(wait), dataset: { category: wait.category } }, describeWait(wait))),
      );
    });
  });
  $("suggest").addEventListener("click", () =>
    act("/what-if/suggestions", { method: "GET", key: undefined }, (found) => {
      $("suggestions").replaceChildren(
        ...(found.length
          ? found.map((s) =>
              el("li", {
                  title: "点击填入预估 Click to fill in the what-if",
                  dataset: { window: s.window, open: String(s.open), categories: s.categories.join(",") },
                  onclick: () => fillWhatIf(s),
                },
                describeSuggestion(s)))
          : [el("li", {}, "暂无建议 / Nothing would help now")]),
      );
    }),
  );
  $("notice-post").addEventListener("click", () =>
    act("/notice", { method: "PUT", body: { text: $("notice-text").value, text_en: $("notice-text-en").value } }, (answer) =>
      say(`通知已发布 / Notice posted: ${answer.text}`)),
  );
}

// -- start ------------------------------------------------------------------------------------

function render() {
  renderLoad();
  renderWindows();
  renderAlerts();
  renderFigures();
  renderActions();
}

function start(session) {
  $("who").hidden = false;
  $("who").replaceChildren(...whoIs(session));
  readOnly = session.readOnly === true;
  $("logout").hidden = readOnly; // the city view's login: log out there
  document.querySelector("section.actions").hidden = readOnly;
  $("live").hidden = false;
  feed = openFeed(settings.feed, {
    token: session.token,
    apply: (old, changes) => ({ ...old, ...changes }),
    onFrame: ({ kind, view: next }) => {
      const first = view === null;
      view = next;
      if (first) wireActions();
      render();
      if (kind === "view") document.body.dataset.version = String(feed.version);
    },
    onState: (state, detail) => {
      showState(state, detail);
      // A refused token (ended elsewhere, expired): the login form again, saying why.
      if (state === "refused" && (detail.code === 4401 || detail.code === 4403)) {
        feed.close();
        sessionEnded(hall);
        location.reload();
      }
    },
  });
  tick();
  setInterval(tick, 1000);
}

$("logout").addEventListener("click", async () => {
  try {
    await api(hall, "/logout", { method: "POST", body: {} });
  } catch {
    // Ended already: the form is what follows either way.
  }
  forget(hall);
  location.reload();
});

if (!managerSession(hall)) {
  $("live").hidden = true;
  showState(null); // no feed yet: not "Connecting" over the login form
}
requireLogin(hall, $("login"), start);
