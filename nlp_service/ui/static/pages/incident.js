// An incident's drill-down: headline, what carries it (segment, NPS, key phrases), its member alerts ranked
// with why each belongs (click one to open it), and acknowledge / resolve for the whole incident.
import { can, get, post } from "/ui/static/api.js";
import { badge, h, num, section, table, when } from "/ui/static/dom.js";

const phrasesOf = (summary) =>
  (summary.key_phrases || []).map((p) => (typeof p === "string" ? p : p.phrase)).filter(Boolean);

export async function openIncident(detail, id) {
  const incident = await get(`/v1/incidents/${encodeURIComponent(id)}`);
  const s = incident.summary || {};
  const nps = s.nps || {};
  const facts = [
    ["Where", incident.segment === "all" ? "all segments" : `${incident.segment}: ${incident.segment_value}`],
    ["When", `${when(incident.window_start)} – ${when(incident.window_end)}`],
    ["Topics", (incident.topics || []).join(", ")],
    ["NPS", nps.window ? `${num(nps.window.nps, 0)} vs ${num(nps.baseline?.nps, 0)} usual (Δ ${num(nps.delta, 0)})` : "–"],
    ["Key phrases", phrasesOf(s).slice(0, 8).join(" · ") || "–"],
  ];
  detail.append(
    h("section", { class: "card", id: "incident-detail", dataset: { status: incident.status } },
      h("div", { class: "row" }, badge(incident.severity), badge(incident.status, incident.status),
        h("h2", { class: "grow" }, incident.headline)),
      h("p", { class: "summary" }, s.lead_summary || s.text || ""),
      h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      incidentActions(incident)),
    section("Member alerts, ranked", table(
      [
        { title: "#", cell: (m) => m.rank },
        { title: "Alert", cell: (m) => `${m.topic_label || m.topic_id} ${m.kind} (${m.severity})` },
        { title: "Segment", cell: (m) => (m.segment === "all" ? "all" : `${m.segment}: ${m.segment_value}`) },
        { title: "Why it belongs", cell: (m) => m.reason, class: "text" },
      ],
      incident.members || [],
      (m) => { location.search = new URLSearchParams({ status: "", id: m.alert_id }).toString(); },
    )),
  );
}

function incidentActions(incident) {
  if (!can("alerts")) return null;
  const act = (verb) => async () => {
    await post(`/v1/incidents/${encodeURIComponent(incident.id)}/${verb}`, {});
    location.reload();
  };
  const buttons = [];
  if (incident.status === "new") buttons.push(h("button", { id: "acknowledge-incident", class: "primary", onclick: act("acknowledge") }, "Acknowledge"));
  if (incident.status !== "resolved") buttons.push(h("button", { id: "resolve-incident", onclick: act("resolve") }, "Resolve"));
  return h("div", { class: "actions" }, h("div", { class: "row" }, buttons));
}
