// A filterable list of cases (alerts today; incidents on /v1/incidents use the same component):
// status and severity filters, a table, and a drill-down opened by ?id=... in the page's URL.
import { get } from "/ui/static/api.js";
import { h, select, table } from "/ui/static/dom.js";

export const SEVERITIES = [["", "Any severity"], ["critical", "critical"], ["high", "high"], ["medium", "medium"], ["low", "low"]];

// source: { title, endpoint, itemsKey, statuses: [[value, label]], columns, open(root, id) }
export async function caseList(root, params, source) {
  const status = params.get("status") ?? source.statuses[0][0];
  const severity = params.get("severity") || "";
  const id = params.get("id");
  const go = (changes) => {
    const next = new URLSearchParams({ view: params.get("view") || "", status, severity, ...changes });
    for (const [k, v] of [...next]) if (!v) next.delete(k);
    location.search = next.toString();
  };
  const page = await get(source.endpoint, { status, severity, limit: 100 });
  const items = page[source.itemsKey];
  const list = h(
    "section",
    { class: "card list" },
    h("div", { class: "filters" },
      h("label", {}, "Status ", select("status", source.statuses, status, (e) => go({ status: e.target.value }))),
      h("label", {}, "Severity ", select("severity", SEVERITIES, severity, (e) => go({ severity: e.target.value }))),
      h("span", { class: "muted" }, `${page.total} ${source.itemsKey}`)),
    items.length
      ? table(source.columns, items, (item) => go({ id: item.id }))
      : h("p", { class: "muted" }, `No ${source.itemsKey} match.`),
  );
  const detail = h("div", { class: "detail", id: "detail" });
  root.append(h("h1", {}, source.title), h("div", { class: "split" }, list, detail));
  for (const row of list.querySelectorAll("tbody tr")) {
    const item = items[[...row.parentNode.children].indexOf(row)];
    row.dataset.id = item.id;
    if (item.id === id) row.classList.add("selected");
  }
  if (id) await source.open(detail, id);
  else detail.append(h("p", { class: "muted" }, `Choose one to see its explanation.`));
}
