// Plotly (served from the installed plotly package) with one look for every chart.
const BASE = {
  margin: { l: 48, r: 16, t: 8, b: 36 },
  paper_bgcolor: "rgba(0,0,0,0)",
  plot_bgcolor: "rgba(0,0,0,0)",
  font: { family: "system-ui, -apple-system, Segoe UI, sans-serif", size: 12, color: "#334" },
  legend: { orientation: "h", y: -0.18 },
  xaxis: { gridcolor: "#e8ebf0" },
  yaxis: { gridcolor: "#e8ebf0", rangemode: "tozero" },
  hovermode: "closest",
};
export const COLORS = ["#3366cc", "#dc6b19", "#2a9d8f", "#8e44ad", "#c0392b", "#7f8c8d", "#b8860b"];

export function plot(el, traces, layout = {}) {
  const merged = { ...BASE, ...layout, xaxis: { ...BASE.xaxis, ...layout.xaxis }, yaxis: { ...BASE.yaxis, ...layout.yaxis } };
  return window.Plotly.newPlot(el, traces, merged, { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] });
}

// The expected band as two traces (upper edge, then the lower edge filled up to it).
export function bandTraces(x, low, high, name = "expected band") {
  return [
    { x, y: high, mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false },
    { x, y: low, mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: "rgba(51,102,204,0.14)", name, hoverinfo: "skip" },
  ];
}

export function vline(x, color = "#8e44ad") {
  return { type: "line", xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1, line: { color, width: 1, dash: "dot" } };
}

// Charts are drawn once their element is in the page: pages queue them, the shell draws them after render().
const queued = [];
export function whenMounted(draw) {
  queued.push(draw);
}
export async function drawQueued() {
  const draws = queued.splice(0);
  await Promise.all(draws.map((draw) => draw()));
}
