// Case actions and history, one implementation for alerts and incidents (the cases API:
// POST /v1/{alerts|incidents}/{id}/acknowledge|resolve|close|assign|notes, GET .../history).
// Everything here needs the "alerts" scope; assign, close, notes and history need the cases API
// (features.cases in /ui/api/me). Without them the controls are absent.
import { can, get, has, post } from "/ui/static/api.js";
import { badge, h, table, when } from "/ui/static/dom.js";

const path = (kind, id, verb) => `/v1/${kind}s/${encodeURIComponent(id)}/${verb}`;
export const changeCase = (kind, id, verb, body) => post(path(kind, id, verb), body);

// The action bar of one case (kind: "alert" | "incident"); onDone(updated) re-renders.
export function caseActions(kind, item, onDone) {
  if (!can("alerts")) return null;
  const cases = has("cases");
  const note = h("textarea", { id: "note", rows: 2, maxlength: 1000, placeholder: "Note (optional, kept with the change)" });
  const message = h("span", { class: "error", role: "alert" });
  const run = (verb, body) => async () => {
    message.textContent = "";
    try {
      onDone(await changeCase(kind, item.id, verb, body()));
    } catch (error) {
      message.textContent = error.message;
    }
  };
  const withNote = () => (note.value.trim() ? { note: note.value.trim() } : {});
  const buttons = [];
  if (item.status === "new") buttons.push(h("button", { id: "acknowledge", class: "primary", onclick: run("acknowledge", withNote) }, "Acknowledge"));
  if (item.status === "new" || item.status === "acknowledged") buttons.push(h("button", { id: "resolve", onclick: run("resolve", withNote) }, "Resolve"));
  if (cases && item.status === "resolved") buttons.push(h("button", { id: "close", onclick: run("close", withNote) }, "Close"));
  if (cases) {
    buttons.push(h("button", { id: "add-note", onclick: async () => {
      if (!note.value.trim()) {
        message.textContent = "Write the note first.";
        return;
      }
      await run("notes", withNote)();
    } }, "Add note"));
  }
  const bar = h("div", { class: "actions" }, note, h("div", { class: "row" }, buttons, message));
  if (cases && item.status !== "closed") {  // assign to an owner (free text; empty unassigns)
    const owner = h("input", { id: "owner", placeholder: "Owner (name or e-mail)", value: item.owner || "" });
    bar.append(h("div", { class: "row" }, owner,
      h("button", { id: "assign", onclick: run("assign", () => ({ owner: owner.value.trim() || null })) }, "Assign")));
  }
  return bar;
}

// The case's status line: severity, status, overdue and the owner.
export function caseBadges(item) {
  return [badge(item.severity), badge(item.status, item.status), item.overdue ? badge("overdue") : null];
}

export function ownerLine(item) {
  return item.owner ? h("p", { id: "owner-label" }, `Owner: ${item.owner}`) : null;
}

// The history (GET .../history), or null where the cases API or the scope is missing.
export async function caseHistory(kind, id) {
  if (!has("cases") || !can("alerts")) return null;
  return (await get(path(kind, id, "history"))).entries;
}

export function historySection(entries) {
  if (!entries) return null;
  const what = (e) => (e.to_status ? `${e.action} (${e.from_status} → ${e.to_status})` : e.action);
  return h("section", { class: "card", id: "history" }, h("h2", {}, "History"),
    entries.length
      ? table(
        [
          { title: "When", cell: (e) => when(e.at) },
          { title: "Who", cell: (e) => e.actor },
          { title: "What", cell: what },
          { title: "Owner", cell: (e) => e.owner || "–" },
          { title: "Note", cell: (e) => e.note || "", class: "text" },
        ],
        [...entries].reverse(),  // newest first
      )
      : h("p", { class: "muted" }, "No changes yet."));
}
