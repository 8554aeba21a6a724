// Search: semantic or hybrid with filters, "more like this", and adding a result to a topic as an example.
import { can, get, post } from "/ui/static/api.js";
import { badge, h, num, section, select, when } from "/ui/static/dom.js";

export async function render(root, params) {
  const q = params.get("q") || "";
  const like = params.get("like") || "";
  const mode = params.get("mode") || "hybrid";
  const region = params.get("region") || "";
  const touchpoint = params.get("touchpoint") || "";
  const sentiment = params.get("sentiment") || "";
  const form = h("form", { class: "filters", id: "search-form" },
    h("input", { id: "q", name: "q", value: q, placeholder: "Search comments by meaning…", class: "grow" }),
    h("label", {}, "Mode ", select("mode", [["hybrid", "hybrid"], ["vector", "semantic"]], mode)),
    h("input", { id: "region", name: "region", value: region, placeholder: "region", size: 10 }),
    h("input", { id: "touchpoint", name: "touchpoint", value: touchpoint, placeholder: "touchpoint", size: 10 }),
    h("label", {}, "Sentiment ", select("sentiment", [["", "any"], ["negative", "negative"], ["neutral", "neutral"], ["positive", "positive"]], sentiment)),
    h("button", { type: "submit", class: "primary" }, "Search"));
  form.querySelector("#mode").name = "mode";
  form.querySelector("#sentiment").name = "sentiment";
  root.append(h("h1", {}, "Search"), form);
  if (!q && !like) {
    root.append(h("p", { class: "muted" }, "Type a question or a complaint; hybrid mode also matches keywords and ids."));
    return;
  }
  const filters = {};
  if (region) filters.region = [region];
  if (touchpoint) filters.touchpoint = [touchpoint];
  if (sentiment) filters.sentiment = [sentiment];
  const request = like ? { comment_id: like, k: 20, mode, filters } : { query: q, k: 20, mode, filters };
  const [result, topics] = await Promise.all([
    post("/v1/search", request),
    can("topics") ? get("/v1/topics/taxonomy") : Promise.resolve(null),
  ]);
  const title = like ? `More like ${like}` : `${result.results.length} results (${result.mode}, ${num(result.took_ms, 0)} ms)`;
  root.append(section(title, h("ol", { class: "results", id: "results" }, result.results.map((hit) => resultItem(hit, topics)))));
}

function resultItem(hit, taxonomy) {
  const meta = [when(hit.created_at), hit.source, hit.region, hit.touchpoint, hit.nps != null ? `NPS ${hit.nps}` : null].filter(Boolean).join(" · ");
  const item = h("li", { class: "hit", dataset: { id: hit.id } },
    h("p", { class: "text" }, hit.text),
    h("div", { class: "row" },
      badge(hit.sentiment, hit.sentiment),
      hit.topics.map((t) => badge(t.id, "topic")),
      h("span", { class: "muted grow" }, `${meta} · score ${num(hit.score, 3)}`),
      taxonomy ? addToTopic(hit, taxonomy) : null,
      h("a", { href: `/ui/search?like=${encodeURIComponent(hit.id)}`, class: "more-like" }, "More like this")));
  return item;
}

// Teach a topic with this comment as a positive example (a new taxonomy version, activated on request).
function addToTopic(hit, taxonomy) {
  const options = taxonomy.topics.map((t) => [t.id, t.name]);
  const choice = select(`topic-${hit.id}`, options, options[0]?.[0]);
  const status = h("span", { class: "muted" });
  const add = h("button", {
    class: "small add-example",
    onclick: async () => {
      status.textContent = "";
      try {
        const out = await post(`/v1/topics/${encodeURIComponent(choice.value)}/examples`, { positive: [{ comment_id: hit.id }] });
        status.textContent = `added: taxonomy version ${out.version.id} (activate it on Topics)`;
      } catch (error) {
        status.textContent = error.message;
      }
    },
  }, "Add as example");
  return h("span", { class: "teach" }, status, choice, add);
}
