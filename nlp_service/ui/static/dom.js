// Tiny DOM helpers: h() builds elements (text is always set as text, never as HTML).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const day = (iso) => (iso ? String(iso).slice(0, 10) : "");
export const when = (iso) => (iso ? String(iso).replace("T", " ").slice(0, 16) : "");
export const num = (x, digits = 1) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
export const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)}%`);

export function badge(text, kind = text) {
  return h("span", { class: `badge badge-${kind}` }, text);
}

export function table(columns, rows, onRow) {
  const head = h("tr", {}, columns.map((c) => h("th", {}, c.title)));
  const body = rows.map((row) =>
    h(
      "tr",
      { class: onRow ? "clickable" : "", onclick: onRow ? () => onRow(row) : undefined },
      columns.map((c) => h("td", { class: c.class || "" }, c.cell(row))),
    ),
  );
  return h("table", { class: "grid" }, h("thead", {}, head), h("tbody", {}, body));
}

export function notice(text, kind = "muted") {
  return h("p", { class: kind }, text);
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

export function needsScope(scope) {
  return notice(`Your API key lacks the “${scope}” scope: this part is not shown.`, "muted scope-note");
}

export function select(id, options, value, onchange) {
  return h(
    "select",
    { id, onchange },
    options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)),
  );
}
