// Calls to the service's API with the session cookie and its CSRF header (double submit).
export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)nlp_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export function query(params) {
  const out = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) out.append(key, item);
  }
  const text = out.toString();
  return text ? `?${text}` : "";
}

export async function api(method, path, body) {
  const headers = { "X-CSRF-Token": csrfToken() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 401) {
    location.assign("/ui/signin");
    throw new ApiError(401, { error: "signed out" });
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path, params = {}) => api("GET", path + query(params));
export const post = (path, body) => api("POST", path, body);

let me = null;
export async function whoAmI() {
  if (!me) me = await get("/ui/api/me");
  return me;
}
export const can = (scope) => Boolean(me && me.scopes.includes(scope));
export const has = (feature) => Boolean(me && me.features[feature]);
