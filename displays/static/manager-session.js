// A manager's login, shared by the manager pages (live view, cases, reports): one login per
// browser tab (sessionStorage: closing the tab ends it on this machine), the bearer token on
// every API call, and back to the login form when the hall says the session has ended.

const key = (hall) => `hall.manager.${hall}`;

/**
 * The kept login ({token, username}) of this tab for `hall`, or null. Without one, a region
 * supervisor's login of this tab (the city view's): it may look into any hall of the region, but
 * not act there ({readOnly: true}; the hall refuses its writes with 403).
 */
export function managerSession(hall) {
  return JSON.parse(sessionStorage.getItem(key(hall)) ?? "null") ?? supervisorSession();
}

function supervisorSession() {
  for (let i = 0; i < sessionStorage.length; i += 1) {
    const name = sessionStorage.key(i);
    if (!name.startsWith("hall.region.")) continue;
    const kept = JSON.parse(sessionStorage.getItem(name) ?? "null");
    if (kept) return { token: kept.token, username: kept.name, readOnly: true, kept: name };
  }
  return null;
}

/**
 * Who the pages say is logged in: the manager's name; a supervisor's, read-only, with the way
 * back to the city view they came from.
 */
export function whoIs(session) {
  if (!session.readOnly) return [session.username];
  const back = document.createElement("a");
  back.href = "/region";
  back.textContent = "全市 / City view";
  return [`${session.username} · 监察只读 / supervisor, read-only · `, back];
}

export function forget(hall) {
  const session = managerSession(hall);
  if (session?.readOnly) sessionStorage.removeItem(session.kept);
  sessionStorage.removeItem(key(hall));
}

const ENDED = (hall) => `hall.manager.${hall}.ended`;
export const ENDED_MESSAGE = "登录已失效，请重新登录 / Your session has ended: log in again";

/**
 * The hall ended this tab's session (a logout elsewhere, a password change, a forced logout,
 * expiry): forget it, and have the login form that follows (after a reload) say why.
 */
export function sessionEnded(hall) {
  forget(hall);
  sessionStorage.setItem(ENDED(hall), "1");
}

/** A refusal of the hall's API: its JSON body's code, message and detail, and the status. */
export class Refused extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error ?? "http_error";
    this.detail = body?.detail ?? null;
  }
}

/**
 * Call `/api/halls/{hall}{path}` as the logged-in manager; the JSON answer, or throws Refused.
 * A 401 forgets the login (the caller shows the form again).
 */
export async function api(hall, path, { method = "GET", body = undefined, key = undefined } = {}) {
  const session = managerSession(hall);
  const headers = { Accept: "application/json" };
  if (session) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const response = await fetch(`/api/halls/${hall}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401) forget(hall);
    throw new Refused(response.status, parsed);
  }
  return parsed;
}

/**
 * Make sure a manager is logged in: `form` (a <form> with inputs named username and password and
 * an element .login-error) is shown until a login succeeds; then `onReady(session)` runs.
 */
export function requireLogin(hall, form, onReady) {
  const kept = managerSession(hall);
  if (kept) {
    form.hidden = true;
    onReady(kept);
    return;
  }
  form.hidden = false;
  if (sessionStorage.getItem(ENDED(hall))) {
    sessionStorage.removeItem(ENDED(hall));
    form.querySelector(".login-error").textContent = ENDED_MESSAGE;
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector(".login-error");
    error.textContent = "";
    try {
      const data = new FormData(form);
      const answer = await api(hall, "/managers/login", {
        method: "POST",
        body: { username: data.get("username"), password: data.get("password") },
      });
      const session = { token: answer.token, username: answer.username };
      sessionStorage.setItem(key(hall), JSON.stringify(session));
      form.reset();
      form.hidden = true;
      onReady(session);
    } catch (refused) {
      error.textContent =
        refused.status === 403
          ? "只有管理员可以登录 / Managers only"
          : `登录失败 / Login failed: ${refused.message}`;
    }
  });
}

/** A fresh Idempotency-Key (crypto.randomUUID needs a secure context; a hall's LAN is http). */
export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
