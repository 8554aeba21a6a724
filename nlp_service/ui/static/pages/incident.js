// An incident's drill-down: headline, what carries it (segment, NPS, key phrases), its member alerts ranked
// with why each belongs (click one to open it), and its case like an alert's: acknowledge / resolve / close
// (cascading to the members), assign, notes and the history.
import { get } from "/ui/static/api.js";
import { caseActions, caseBadges, caseHistory, historySection, ownerLine } from "/ui/static/cases.js";
import { h, num, section, table, when } from "/ui/static/dom.js";

const phrasesOf = (summary) =>
  (summary.key_phrases || []).map((p) => (typeof p === "string" ? p : p.phrase)).filter(Boolean);

export async function openIncident(detail, id) {
  const [incident, history] = await Promise.all([get(`/v1/incidents/${encodeURIComponent(id)}`), caseHistory("incident", id)]);
  const s = incident.summary || {};
  const nps = s.nps || {};
  const facts = [
    ["Where", incident.segment === "all" ? "all segments" : `${incident.segment}: ${incident.segment_value}`],
    ["When", `${when(incident.window_start)} – ${when(incident.window_end)}`],
    ["Topics", (incident.topics || []).join(", ")],
    ["NPS", nps.window ? `${num(nps.window.nps, 0)} vs ${num(nps.baseline?.nps, 0)} usual (Δ ${num(nps.delta, 0)})` : "–"],
    ["Key phrases", phrasesOf(s).slice(0, 8).join(" · ") || "–"],
    ["Due", incident.due_at ? when(incident.due_at) : "–"],
  ];
  detail.append(
    h("section", { class: "card", id: "incident-detail", dataset: { status: incident.status } },
      h("div", { class: "row" }, caseBadges(incident), h("h2", { class: "grow" }, incident.headline)),
      ownerLine(incident),
      h("p", { class: "summary" }, s.lead_summary || s.text || ""),
      h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      caseActions("incident", incident, () => location.reload()),  // the list and the members change too
      incident.note ? h("p", { class: "muted", id: "note-label" }, `Note: ${incident.note}`) : null),
    section("Member alerts, ranked", table(
      [
        { title: "#", cell: (m) => m.rank },
        { title: "Alert", cell: (m) => `${m.topic_label || m.topic_id} ${m.kind} (${m.severity})` },
        { title: "Segment", cell: (m) => (m.segment === "all" ? "all" : `${m.segment}: ${m.segment_value}`) },
        { title: "Status", cell: (m) => m.status },
        { title: "Why it belongs", cell: (m) => m.reason, class: "text" },
      ],
      incident.members || [],
      (m) => { location.search = new URLSearchParams({ status: "", id: m.alert_id }).toString(); },
    )),
    historySection(history),
  );
}
