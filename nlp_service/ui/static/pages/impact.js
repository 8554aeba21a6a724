// Touchpoint Impact Map: touchpoints as points, volume against mean emotional intensity, coloured by
// valence or NPS; a click lists that touchpoint's comments.
import { get } from "/ui/static/api.js";
import { plot, whenMounted } from "/ui/static/charts.js";
import { h, num, pct, section, select, table, when } from "/ui/static/dom.js";

const DAY_MS = 86400000;

export async function render(root, params) {
  const days = Number(params.get("days") || 28);
  const colour = params.get("colour") || "valence";
  // The period ends at the newest comment's day, as on the overview (demo data lies in the past).
  const latest = await get("/v1/comments", { limit: 1 });
  const newest = latest.comments[0] ? Date.parse(latest.comments[0].created_at) : Date.now();
  const end = new Date(Math.floor(newest / DAY_MS + 1) * DAY_MS);
  const start = new Date(end.getTime() - days * DAY_MS);
  const data = await get("/v1/insights/touchpoints", { start: start.toISOString(), end: end.toISOString() });
  const go = (changes) => { location.search = new URLSearchParams({ days, colour, ...changes }).toString(); };
  const chart = h("div", { class: "chart tall", id: "impact-chart" });
  const comments = h("div", { id: "touchpoint-comments" }, h("p", { class: "muted" }, "Click a touchpoint to read its comments."));
  root.append(
    h("h1", {}, "Touchpoint Impact Map"),
    h("div", { class: "filters" },
      h("label", {}, "Period ", select("period", [["7", "Last 7 days"], ["28", "Last 28 days"], ["90", "Last 90 days"]], String(days), (e) => go({ days: e.target.value }))),
      h("label", {}, "Colour by ", select("colour", [["valence", "mean valence"], ["nps", "NPS"]], colour, (e) => go({ colour: e.target.value }))),
      h("span", { class: "muted" }, `${data.total_comments} comments, ${start.toISOString().slice(0, 10)} – ${end.toISOString().slice(0, 10)}`)),
    section("Volume against emotional intensity", chart),
    section("Comments", comments),
  );
  const points = data.touchpoints.filter((t) => t.mean_intensity !== null);
  const show = (touchpoint) => listComments(comments, touchpoint, start, end);
  whenMounted(() => drawMap(chart, points, colour, show));
}

function drawMap(chart, points, colour, show) {
  const values = points.map((t) => (colour === "nps" ? t.nps.nps : t.mean_valence));
  const maxVolume = Math.max(1, ...points.map((t) => t.comments));
  // A scale symmetric around neutral (0), as wide as the data: small differences stay visible.
  const bound = Math.max(colour === "nps" ? 10 : 0.1, ...values.filter((v) => v !== null).map(Math.abs));
  const trace = {
    x: points.map((t) => t.comments),
    y: points.map((t) => t.mean_intensity),
    text: points.map((t) => t.touchpoint || "(none)"),
    customdata: points.map((t) => t.touchpoint),
    mode: "markers+text",
    textposition: "top center",
    hovertemplate: points.map((t) =>
      `<b>${t.touchpoint || "(none)"}</b><br>${t.comments} comments<br>intensity ${num(t.mean_intensity, 2)}<br>valence ${num(t.mean_valence, 2)}<br>NPS ${num(t.nps.nps, 0)}<br>negative ${pct(t.negative_share)}<extra></extra>`),
    marker: {
      size: points.map((t) => 14 + 30 * Math.sqrt(t.comments / maxVolume)),
      color: values,
      colorscale: [[0, "#c0392b"], [0.5, "#f4e6b8"], [1, "#2a9d8f"]],  // negative red, positive green
      cmin: -bound,
      cmax: bound,
      colorbar: { title: { text: colour === "nps" ? "NPS" : "valence" } },
      line: { color: "#fff", width: 1 },
    },
  };
  return plot(chart, [trace], {
    height: 420,
    xaxis: { title: { text: "comments (volume)" }, type: "log" },
    yaxis: { title: { text: "mean emotional intensity" }, rangemode: "normal" },
  }).then(() => chart.on("plotly_click", (event) => show(event.points[0].customdata)));
}

async function listComments(el, touchpoint, start, end) {
  const page = await get("/v1/comments", { touchpoint, start: start.toISOString(), end: end.toISOString(), limit: 20 });
  el.replaceChildren(
    h("h3", {}, `${touchpoint}: latest comments`),
    table(
      [
        { title: "Comment", cell: (c) => c.text, class: "text" },
        { title: "When", cell: (c) => when(c.created_at) },
        { title: "Sentiment", cell: (c) => c.analysis.sentiment?.label ?? "–" },
        { title: "Region", cell: (c) => c.region || "–" },
        { title: "NPS", cell: (c) => (c.nps ?? "–") },
      ],
      page.comments,
    ),
  );
}
