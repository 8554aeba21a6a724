// Models: every head's versions with their metrics, which one is served; promote and roll back (admin).
import { can, get, post } from "/ui/static/api.js";
import { badge, h, needsScope, num, section, table, when } from "/ui/static/dom.js";

const METRIC_KEYS = ["macro_f1", "f1", "accuracy", "pearson", "spearman", "mae"];

export async function render(root) {
  root.append(h("h1", {}, "Models"));
  if (!can("admin")) {
    root.append(section("Model registry", needsScope("admin")));
    return;
  }
  const models = await get("/v1/models");
  const status = h("p", { class: "error", role: "alert" });
  root.append(status);
  for (const task of models.tasks) {
    root.append(section(task.task, table(
      [
        { title: "Version", cell: (v) => v.version },
        { title: "Kind", cell: (v) => v.kind },
        { title: "Created", cell: (v) => when(v.created) },
        { title: "Metrics", cell: (v) => metricText(v.metrics), class: "text" },
        { title: "State", cell: (v) => [v.serving ? badge("served", "acknowledged") : null, v.active && !v.serving ? badge("active") : null] },
        { title: "", cell: (v) => (v.serving || v.active ? "" : promoteButton(task.task, v.version, status)) },
      ],
      task.versions,
    ), task.versions.length > 1 ? rollbackButton(task.task, status) : null));
  }
}

function metricText(metrics) {
  const flat = { ...(metrics.test || {}), ...metrics };
  const parts = METRIC_KEYS.filter((k) => typeof flat[k] === "number").map((k) => `${k} ${num(flat[k], 3)}`);
  return parts.join(" · ") || "–";
}

const act = (status, call) => async () => {
  status.textContent = "";
  try {
    await call();
    location.reload();
  } catch (error) {
    status.textContent = error.message;
  }
};

function promoteButton(task, version, status) {
  return h("button", { class: "small promote", onclick: act(status, () => post(`/v1/models/${task}/promote`, { version })) }, "Promote");
}

function rollbackButton(task, status) {
  return h("button", { class: "small rollback", onclick: act(status, () => post(`/v1/models/${task}/rollback`)) }, "Roll back to the previous version");
}
