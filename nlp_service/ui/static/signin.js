// Exchange an API key for the session cookies, then open the overview.
const form = document.getElementById("signin");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("error");
  error.textContent = "";
  const response = await fetch("/ui/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ key: document.getElementById("key").value }),
    credentials: "same-origin",
  });
  const body = await response.json().catch(() => ({}));  // read fully before navigating away
  if (response.ok) {
    const target = location.pathname.startsWith("/ui/") && location.pathname !== "/ui/signin"
      ? location.pathname + location.search : "/ui/overview";
    location.assign(target);
    return;
  }
  error.textContent = body.error || `Sign-in failed (${response.status})`;
});
