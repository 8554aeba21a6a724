// Topics: the taxonomy with its versions (activate one), each topic's examples, and suggestions to accept.
import { can, get, post } from "/ui/static/api.js";
import { badge, h, num, pct, section, table, when } from "/ui/static/dom.js";

export async function render(root) {
  const [versions, taxonomy, suggestions] = await Promise.all([
    get("/v1/topics/versions"),
    get("/v1/topics/taxonomy"),
    get("/v1/topics/suggestions"),
  ]);
  const editable = can("topics");
  root.append(
    h("h1", {}, "Topics"),
    h("div", { class: "split" },
      section(`Taxonomy “${taxonomy.name}” (version ${taxonomy.version})`, topicList(taxonomy)),
      h("div", {},
        section("Versions", versionList(versions, editable)),
        section("Suggestions", suggestionList(suggestions.suggestions, editable)))),
  );
}

function topicList(taxonomy) {
  return h("div", { id: "topics" }, taxonomy.topics.map((t, i) =>
    h("details", { class: "topic", open: i === 0 },
      h("summary", {}, h("b", {}, t.name), " ", h("span", { class: "muted" }, t.id), t.parent ? h("span", { class: "muted" }, ` ⊂ ${t.parent}`) : null),
      h("p", {}, t.description),
      (t.examples || []).length ? h("ul", {}, t.examples.map((e) => h("li", {}, e))) : null,
      (t.positives || []).length ? h("p", { class: "muted" }, `${t.positives.length} taught positive, ${(t.negatives || []).length} negative examples`) : null)));
}

function versionList(versions, editable) {
  return table(
    [
      { title: "#", cell: (v) => v.id },
      { title: "Change", cell: (v) => v.change, class: "text" },
      { title: "When", cell: (v) => when(v.created_at) },
      { title: "Topics", cell: (v) => v.topics },
      { title: "", cell: (v) => (v.active ? badge("active", "acknowledged") : editable ? activateButton(v) : "") },
    ],
    [...versions].sort((a, b) => b.id - a.id).slice(0, 12),
  );
}

function activateButton(version) {
  return h("button", {
    class: "small activate",
    onclick: async (event) => {
      event.stopPropagation();
      await post(`/v1/topics/versions/${version.id}/activate`);
      location.reload();
    },
  }, "Activate");
}

function suggestionList(items, editable) {
  const open = items.filter((s) => s.status === "open");
  if (!open.length) return h("p", { class: "muted" }, "No open suggestions.");
  return h("div", { id: "suggestions" }, open.map((s) =>
    h("div", { class: "suggestion" },
      h("p", {}, h("b", {}, s.keywords.slice(0, 4).join(", ")), h("span", { class: "muted" }, ` · ${num(s.size, 0)} comments, ×${num(s.growth, 1)} growth, ${pct(s.negative_share)} negative`)),
      h("ul", {}, s.representatives.slice(0, 3).map((c) => h("li", { class: "text" }, c.text))),
      editable ? h("button", {
        class: "small accept",
        onclick: async () => {
          await post(`/v1/topics/suggestions/${encodeURIComponent(s.id)}/accept`, {});
          location.reload();
        },
      }, "Accept as topic") : null)));
}
