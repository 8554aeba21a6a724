// Overview: volume per topic with the expected band, change points, alert markers and incident bands (a band
// over each incident's window coloured by severity, its headline on hover, a click opens it); sentiment and NPS.
import { get } from "/ui/static/api.js";
import { bandTraces, COLORS, plot, vline, whenMounted } from "/ui/static/charts.js";
import { badge, day, h, needsScope, section, select, table, when } from "/ui/static/dom.js";

const PERIODS = [["7", "Last 7 days"], ["28", "Last 28 days"], ["90", "Last 90 days"]];

export async function render(root, params) {
  const days = params.get("days") || "28";
  const segment = params.get("segment") || "";
  const value = params.get("value") || "";
  const data = await get("/ui/api/overview", { days, segment, value });

  const reload = (changes) => {
    const next = new URLSearchParams({ days, segment, value, ...changes });
    for (const [k, v] of [...next]) if (!v) next.delete(k);
    location.search = next.toString();
  };
  const segmentOptions = [["", "All segments"]];
  for (const [field, values] of Object.entries(data.segments)) {
    for (const v of values) segmentOptions.push([`${field}=${v}`, `${field}: ${v}`]);
  }
  const filters = h(
    "div",
    { class: "filters" },
    h("label", {}, "Period ", select("period", PERIODS, days, (e) => reload({ days: e.target.value }))),
    h("label", {}, "Segment ", select("segment", segmentOptions, segment ? `${segment}=${value}` : "", (e) => {
      const [field, v] = e.target.value ? e.target.value.split("=") : ["", ""];
      reload({ segment: field, value: v });
    })),
    h("span", { class: "muted" }, `${day(data.start)} – ${day(data.end)} · per ${data.bucket}`),
  );
  root.append(h("h1", {}, "Overview"), filters);

  if (data.needs.includes("alerts")) {
    root.append(section("Volume per topic", needsScope("alerts")));
  } else {
    root.append(volumeSection(data));
    root.append(incidentsSection(data.incidents));
    root.append(alertsSection(data.alerts));
  }
  root.append(sentimentSection(data));
}

function volumeSection(data) {
  const focusChoice = h("span");
  const chart = h("div", { class: "chart", id: "volume-chart" });
  const card = section("Volume per topic", focusChoice, chart);
  if (!data.topics.length) {
    card.append(h("p", { class: "muted" }, "No comments in this period."));
    return card;
  }
  const alerted = data.alerts.map((a) => a.topic_id).find((id) => data.topics.some((t) => t.topic_id === id));
  let focus = alerted || data.topics[0].topic_id;
  const draw = () => {
    const traces = [];
    const shapes = [];
    data.topics.forEach((topic, i) => {
      const x = topic.points.map((p) => p.start);
      if (topic.topic_id === focus) {
        traces.push(...bandTraces(x, topic.points.map((p) => p.low), topic.points.map((p) => p.high), `expected band (${topic.label})`));
        for (const cp of topic.change_points) shapes.push(vline(cp.timestamp));
      }
      traces.push({
        x, y: topic.points.map((p) => p.count), mode: "lines", name: topic.label,
        line: { color: COLORS[i % COLORS.length], width: topic.topic_id === focus ? 2.5 : 1.2 },
        opacity: topic.topic_id === focus ? 1 : 0.55,
      });
    });
    const incidents = incidentLayers(data);
    shapes.push(...incidents.shapes);
    if (incidents.trace) traces.push(incidents.trace);
    const markers = data.alerts.filter((a) => data.topics.some((t) => t.topic_id === a.topic_id));
    if (markers.length) {
      traces.push({
        x: markers.map((a) => a.peak_at), y: markers.map((a) => a.observed), mode: "markers", name: "alerts",
        marker: { symbol: "diamond", size: 12, color: "#c0392b", line: { color: "#fff", width: 1 } },
        text: markers.map((a) => `${a.severity} ${a.topic_label || a.topic_id} (${a.segment_value}): ${a.observed} vs ${a.baseline.toFixed(1)} expected`),
        hoverinfo: "text", customdata: markers.map((a) => a.id),
      });
    }
    return plot(chart, traces, { shapes, height: 340, yaxis: { title: { text: "comments" } } }).then(() =>
      chart.on("plotly_click", (event) => {
        const point = event.points[0];
        const id = point?.customdata;
        if (!id) return;
        location.assign(point.data.meta === "incident" ? incidentUrl(id) : `/ui/alerts?id=${encodeURIComponent(id)}`);
      }),
    );
  };
  focusChoice.append(
    h("label", { class: "inline" }, "Band and change points for ",
      select("focus", data.topics.map((t) => [t.topic_id, t.label]), focus, (e) => { focus = e.target.value; draw(); })),
  );
  whenMounted(draw);
  return card;
}

const SEVERITY_COLORS = { critical: "#8e1b10", high: "#c0392b", medium: "#e67e22", low: "#b8860b" };
const incidentUrl = (id) => `/ui/alerts?${new URLSearchParams({ view: "incidents", status: "", id })}`;
const fill = (hex, alpha) => `rgba(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(",")},${alpha})`;

// Each incident as a band over its window (a layout shape) and a marker above the series at the window's
// middle carrying the hover text and the click (shapes take neither).
function incidentLayers(data) {
  if (!data.incidents.length) return { shapes: [], trace: null };
  const top = Math.max(1, ...data.topics.flatMap((t) => t.points.map((p) => Math.max(p.count, p.high || 0))));
  const color = (i) => SEVERITY_COLORS[i.severity] || SEVERITY_COLORS.medium;
  const middle = (i) => new Date((Date.parse(i.window_start) + Date.parse(i.window_end)) / 2).toISOString();
  return {
    shapes: data.incidents.map((i) => ({
      type: "rect", xref: "x", yref: "paper", x0: i.window_start, x1: i.window_end, y0: 0, y1: 1, layer: "below",
      fillcolor: fill(color(i), 0.16), line: { color: fill(color(i), 0.5), width: 1 },
    })),
    trace: {
      x: data.incidents.map(middle), y: data.incidents.map(() => top * 1.08), mode: "markers", name: "incidents", meta: "incident",
      marker: { symbol: "triangle-down", size: 16, color: data.incidents.map(color), line: { color: "#fff", width: 1 } },
      text: data.incidents.map((i) => `Incident (${i.severity}, ${i.status}): ${i.headline}`),
      hoverinfo: "text", customdata: data.incidents.map((i) => i.id),
    },
  };
}

function incidentsSection(incidents) {
  if (!incidents.length) return section("Incidents in this period", h("p", { class: "muted" }, "No incidents in this period."));
  const card = section(
    "Incidents in this period",
    table(
      [
        { title: "Severity", cell: (i) => badge(i.severity) },
        { title: "Headline", cell: (i) => i.headline, class: "text" },
        { title: "When", cell: (i) => `${when(i.window_start)} – ${when(i.window_end)}` },
        { title: "Owner", cell: (i) => i.owner || "–" },
        { title: "Status", cell: (i) => [badge(i.status), i.overdue ? badge("overdue") : null] },
      ],
      incidents,
      (i) => location.assign(incidentUrl(i.id)),
    ),
  );
  card.id = "overview-incidents";
  return card;
}

function alertsSection(alerts) {
  if (!alerts.length) return section("Alerts in this period", h("p", { class: "muted" }, "No alerts in this period."));
  return section(
    "Alerts in this period",
    table(
      [
        { title: "Severity", cell: (a) => badge(a.severity) },
        { title: "Topic", cell: (a) => a.topic_label || a.topic_id },
        { title: "Segment", cell: (a) => (a.segment === "all" ? "all" : `${a.segment}: ${a.segment_value}`) },
        { title: "Peak", cell: (a) => when(a.peak_at) },
        { title: "Observed / expected", cell: (a) => `${a.observed} / ${a.baseline.toFixed(1)}` },
        { title: "Status", cell: (a) => badge(a.status) },
      ],
      alerts,
      (a) => location.assign(`/ui/alerts?id=${encodeURIComponent(a.id)}`),
    ),
  );
}

function sentimentSection(data) {
  const chart = h("div", { class: "chart", id: "sentiment-chart" });
  const card = section("Sentiment and NPS", chart);
  if (!data.sentiment.length) {
    card.append(h("p", { class: "muted" }, "No comments in this period."));
    return card;
  }
  whenMounted(() =>
    plot(
      chart,
      [
        { x: data.sentiment.map((p) => p.start), y: data.sentiment.map((p) => (p.negative_share === null ? null : 100 * p.negative_share)), name: "negative %", type: "bar", marker: { color: "rgba(192,57,43,0.55)" }, customdata: data.sentiment.map((p) => p.comments), hovertemplate: "%{y:.1f}% of %{customdata} comments<extra>negative</extra>" },
        { x: data.nps.map((g) => g.key), y: data.nps.map((g) => g.nps), name: "NPS", mode: "lines+markers", yaxis: "y2", line: { color: "#3366cc" } },
      ],
      {
        height: 280,
        yaxis: { title: { text: "% of comments" } },
        yaxis2: { title: { text: "NPS" }, overlaying: "y", side: "right", range: [-100, 100], dtick: 50, showgrid: false, zeroline: false },
        margin: { l: 48, r: 48, t: 8, b: 36 },
      },
    ),
  );
  return card;
}
