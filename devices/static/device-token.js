// A device page's token: given once in the address's fragment (#token=…, which browsers never
// send to the server), kept in this browser's storage, and removed from the address bar so that
// it does not linger on screen or in a bookmark. It goes to the server only in an Authorization
// header (and in a screen feed's ?token=).

/** The token of this page's device for `hall` (null if none was ever given). */
export function deviceToken(hall) {
  const key = `hall.device-token.${hall}`;
  const given = new URLSearchParams(location.hash.slice(1)).get("token");
  if (given) {
    try {
      localStorage.setItem(key, given);
    } catch {
      // Storage refused (a private window): the token holds for this page load only.
    }
    history.replaceState(null, "", location.pathname + location.search);
    return given;
  }
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}
