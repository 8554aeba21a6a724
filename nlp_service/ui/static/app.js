// The page shell: who is signed in, the navigation, and the current page's module.
import { api, whoAmI } from "/ui/static/api.js";
import { drawQueued } from "/ui/static/charts.js";
import { h } from "/ui/static/dom.js";

const PAGES = ["overview", "alerts", "impact", "search", "topics", "models"];

async function main() {
  const page = location.pathname.split("/")[2] || "overview";
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === page) link.classList.add("active");
  }
  const me = await whoAmI();
  document.getElementById("who").textContent = me.keys_on
    ? `key ${me.key_id} · ${me.scopes.join(", ")}`
    : "open mode (API keys off, local only)";
  const signout = document.getElementById("signout");
  if (me.keys_on) {
    signout.hidden = false;
    signout.addEventListener("click", async () => {
      await api("DELETE", "/ui/session");
      location.assign("/ui/signin");
    });
  }
  const root = document.getElementById("page");
  if (!PAGES.includes(page)) return;
  const started = performance.now();
  const module = await import(`/ui/static/pages/${page}.js`);
  root.replaceChildren();
  try {
    await module.render(root, new URLSearchParams(location.search), me);
    await drawQueued();
  } catch (error) {
    root.append(h("p", { class: "error" }, `Could not load this page: ${error.message}`));
  }
  // Read by the browser tests and the render benchmark: the page is drawn with its data.
  document.body.dataset.renderMs = String(Math.round(performance.now() - started));
  document.body.dataset.readyAtMs = String(Math.round(performance.now()));
  document.body.dataset.ready = page;
}

window.addEventListener("DOMContentLoaded", main);
