// Alerts: list by status and severity, drill-down with the explanation, the series around the window,
// representative comments and the case actions. Incidents plug into the same list (see incidentSource).
import { can, get, has } from "/ui/static/api.js";
import { caseActions, caseBadges, caseHistory, historySection, ownerLine } from "/ui/static/cases.js";
import { bandTraces, plot, vline, whenMounted } from "/ui/static/charts.js";
import { caseList } from "/ui/static/components/caselist.js";
import { openIncident } from "/ui/static/pages/incident.js";
import { badge, h, needsScope, num, pct, section, table, when } from "/ui/static/dom.js";
import { bandOf } from "/ui/static/stats.js";

const STATUSES = [["open", "Open"], ["new", "New"], ["acknowledged", "Acknowledged"], ["resolved", "Resolved"], ["closed", "Closed"], ["overdue", "Overdue"], ["", "All"]];
const DAY_MS = 86400000;

export const alertSource = {
  title: "Alerts",
  endpoint: "/v1/alerts",
  itemsKey: "alerts",
  statuses: STATUSES,
  columns: [
    { title: "Severity", cell: (a) => badge(a.severity) },
    { title: "Topic", cell: (a) => a.topic_label || a.topic_id },
    { title: "Segment", cell: (a) => (a.segment === "all" ? "all" : `${a.segment}: ${a.segment_value}`) },
    { title: "Peak", cell: (a) => when(a.peak_at) },
    { title: "Status", cell: (a) => [badge(a.status), a.overdue ? badge("overdue") : null] },
  ],
  open: openAlert,
};

// The incidents list, for when /v1/incidents exists (wired at merge: same component, another endpoint).
export const incidentSource = {
  ...alertSource,
  title: "Incidents",
  endpoint: "/v1/incidents",
  itemsKey: "incidents",
  statuses: STATUSES,
  columns: [
    { title: "Severity", cell: (i) => badge(i.severity) },
    { title: "Headline", cell: (i) => i.headline },
    { title: "Owner", cell: (i) => i.owner || "–" },
    { title: "Status", cell: (i) => [badge(i.status), i.overdue ? badge("overdue") : null] },
  ],
  open: openIncident,
};

export async function render(root, params) {
  if (!can("alerts")) {
    root.append(h("h1", {}, "Alerts"), section("Alerts", needsScope("alerts")));
    return;
  }
  const source = params.get("view") === "incidents" && has("incidents") ? incidentSource : alertSource;
  if (has("incidents")) {
    root.append(h("nav", { class: "tabs" },
      h("a", { href: "/ui/alerts", class: source === alertSource ? "active" : "" }, "Alerts"),
      h("a", { href: "/ui/alerts?view=incidents", id: "incidents-tab", class: source === incidentSource ? "active" : "" }, "Incidents")));
  }
  await caseList(root, params, source);
}

async function openAlert(detail, id) {
  const alert = await get(`/v1/alerts/${encodeURIComponent(id)}`);
  const since = new Date(Date.parse(alert.window_start) - 21 * DAY_MS).toISOString();
  const until = new Date(Date.parse(alert.window_end) + 7 * DAY_MS).toISOString();
  const segment = alert.segment === "all" ? {} : { segment: alert.segment, value: alert.segment_value };
  const [series, history] = await Promise.all([
    get(`/v1/topics/${encodeURIComponent(alert.topic_id)}/series`, { bucket: alert.bucket, since, until, ...segment }),
    caseHistory("alert", id),
  ]);
  drawAlert(detail, alert, series, history);
}

function drawAlert(detail, alert, series, history) {
  const e = alert.explanation || {};
  const chart = h("div", { class: "chart", id: "alert-chart" });
  const redraw = () => location.reload();  // the list's status column changes too
  detail.append(
    h("section", { class: "card", id: "alert-detail", dataset: { status: alert.status } },
      h("div", { class: "row" }, caseBadges(alert),
        h("h2", { class: "grow" }, `${alert.topic_label || alert.topic_id}${alert.segment === "all" ? "" : ` · ${alert.segment_value}`}`)),
      ownerLine(alert),
      alert.incident_id && has("incidents")
        ? h("p", {}, h("a", { id: "alert-incident", href: `/ui/alerts?view=incidents&status=&id=${encodeURIComponent(alert.incident_id)}` }, "Part of an incident: open it →"))
        : null,
      h("p", { class: "summary" }, e.summary || ""),
      facts(alert, e),
      chart,
      caseActions("alert", alert, redraw),
      alert.note ? h("p", { class: "muted" }, `Note: ${alert.note}`) : null),
    overIndexing(e.over_indexing),
    section("Representative comments", table(
      [
        { title: "Comment", cell: (c) => c.text, class: "text" },
        { title: "When", cell: (c) => when(c.created_at) },
        { title: "Region", cell: (c) => c.region || "–" },
        { title: "Touchpoint", cell: (c) => c.touchpoint || "–" },
        { title: "Source", cell: (c) => c.source },
        { title: "NPS", cell: (c) => (c.nps ?? "–") },
      ],
      alert.representative_comments,
    )),
    historySection(history),
  );
  whenMounted(() => drawSeries(chart, alert, series));
}

function shift(value, digits, asPct) {
  if (!value || value.window === null || value.window === undefined) return "–";
  const f = (x) => (asPct ? pct(x) : num(x, digits));
  return `${f(value.window)} vs ${f(value.baseline)}`;
}

function facts(alert, e) {
  const v = e.volume || {};
  const ratio = alert.baseline > 0 ? `${(alert.observed / alert.baseline).toFixed(1)}×` : "new";
  const rows = [
    ["What", `${alert.kind} ${alert.direction} in ${alert.bucket} buckets, ${when(alert.window_start)} – ${when(alert.window_end)}`],
    ["How much", `${alert.observed} comments at the peak vs ${num(alert.baseline)} expected (${ratio}, |z| ${num(alert.score)})`],
    ["Window volume", v.window_comments !== undefined ? `${v.window_comments} comments vs ${num(v.baseline_comments_per_window)} usual` : "–"],
    ["NPS", e.nps ? `${shift({ window: e.nps.window?.nps ?? e.nps.window, baseline: e.nps.baseline?.nps ?? e.nps.baseline }, 0)} (Δ ${num(e.nps.delta, 0)})` : "–"],
    ["Negative share", shift(e.negative_share, 1, true)],
    ["Emotional intensity", shift(e.intensity, 2)],
  ];
  // Key phrases, where the explanation carries them (strings or {phrase} objects).
  const phrases = (e.key_phrases || []).map((p) => (typeof p === "string" ? p : p.phrase || p.text)).filter(Boolean);
  if (phrases.length) rows.push(["Key phrases", phrases.slice(0, 8).join(" · ")]);
  return h("dl", { class: "facts" }, rows.flatMap(([k, val]) => [h("dt", {}, k), h("dd", {}, val)]));
}

function overIndexing(over) {
  const rows = Array.isArray(over) ? over : [];
  if (!rows.length) return null;
  return section("Segments carrying it", table(
    [
      { title: "Segment", cell: (r) => `${r.field}: ${r.value}` },
      { title: "Share in window", cell: (r) => pct(r.window_share) },
      { title: "Usual share", cell: (r) => pct(r.baseline_share) },
      { title: "Of the change", cell: (r) => pct(r.excess_share) },
    ],
    rows,
  ));
}

function drawSeries(chart, alert, series) {
  const x = series.points.map((p) => p.start);
  const bands = series.points.map((p) => bandOf(p.expected));
  const traces = [
    ...bandTraces(x, bands.map((b) => b.low), bands.map((b) => b.high)),
    { x, y: series.points.map((p) => p.expected), mode: "lines", name: "expected", line: { color: "#3366cc", dash: "dash", width: 1 } },
    { x, y: series.points.map((p) => p.count), mode: "lines+markers", name: "comments", line: { color: "#1f2d3d", width: 2 }, marker: { size: 4 } },
  ];
  const shapes = [
    { type: "rect", xref: "x", yref: "paper", x0: alert.window_start, x1: alert.window_end, y0: 0, y1: 1, fillcolor: "rgba(192,57,43,0.10)", line: { width: 0 } },
    ...series.change_points.map((cp) => vline(cp.timestamp)),
  ];
  return plot(chart, traces, { shapes, height: 260, yaxis: { title: { text: "comments" } } });
}
