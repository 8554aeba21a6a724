// Case actions on alerts. acknowledge/resolve (with a note) exist today; assign needs the cases API
// (POST /v1/alerts/{id}/assign {owner}) and shows only when /ui/api/me reports features.cases.
import { can, has, post } from "/ui/static/api.js";
import { h } from "/ui/static/dom.js";

export const acknowledgeAlert = (id, note) => post(`/v1/alerts/${encodeURIComponent(id)}/acknowledge`, note ? { note } : {});
export const resolveAlert = (id, note) => post(`/v1/alerts/${encodeURIComponent(id)}/resolve`, note ? { note } : {});
export const assignAlert = (id, owner) => post(`/v1/alerts/${encodeURIComponent(id)}/assign`, { owner });

// The action bar of one alert; absent without the "alerts" scope. onDone(updated) re-renders.
export function alertActions(alert, onDone) {
  if (!can("alerts")) return null;
  const note = h("textarea", { id: "note", rows: 2, maxlength: 1000, placeholder: "Note (optional, kept with the change)" });
  const message = h("span", { class: "error", role: "alert" });
  const run = (action) => async () => {
    message.textContent = "";
    try {
      onDone(await action());
    } catch (error) {
      message.textContent = error.message;
    }
  };
  const buttons = [];
  if (alert.status === "new") {
    buttons.push(h("button", { id: "acknowledge", class: "primary", onclick: run(() => acknowledgeAlert(alert.id, note.value)) }, "Acknowledge"));
  }
  if (alert.status !== "resolved" && alert.status !== "closed") {
    buttons.push(h("button", { id: "resolve", onclick: run(() => resolveAlert(alert.id, note.value)) }, "Resolve"));
  }
  const bar = h("div", { class: "actions" }, note, h("div", { class: "row" }, buttons, message));
  const assign = assignControl(alert, onDone);
  if (assign) bar.append(assign);
  return bar;
}

// Assign to an owner (free text); shown once the cases API is merged.
export function assignControl(alert, onDone) {
  if (!has("cases") || !can("alerts")) return null;
  const owner = h("input", { id: "owner", placeholder: "Owner (name or e-mail)", value: alert.owner || "" });
  return h("div", { class: "row" }, owner,
    h("button", { id: "assign", onclick: async () => onDone(await assignAlert(alert.id, owner.value)) }, "Assign"));
}
