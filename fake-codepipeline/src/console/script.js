(function () {
  "use strict";
  const root = () => document.getElementById("console");
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));
  const say = (text) => { const e = document.getElementById("clock-error"); if (e) e.textContent = text; };
  document.addEventListener("click", async (ev) => {
    const clock = ev.target.closest("[data-clock]");
    const start = ev.target.closest("[data-start]");
    if (!clock && !start) return;
    ev.preventDefault();
    try {
      const resp = clock
        ? await fetch("/_sim/clock", { method: "POST", headers: { "content-type": "application/json" }, body: clock.dataset.clock })
        : await fetch("/_sim/console/pipelines/" + encodeURIComponent(start.dataset.start) + "/start", { method: "POST" });
      if (!resp.ok) { const body = await resp.json().catch(() => ({})); say(body.message || ("HTTP " + resp.status)); }
    } catch (e) { say(String(e)); }
  });
  let ticked = performance.now();
  setInterval(() => {
    const r = root(), el = document.getElementById("clock-elapsed");
    const speed = r.dataset.paused === "1" ? 0 : Number(r.dataset.speed) || 0;
    if (speed <= 0 || !el) return;
    const ms = Number(el.dataset.elapsedMs) + speed * (performance.now() - ticked);
    const s = Math.floor(ms / 1000), p = (n) => String(n).padStart(2, "0");
    el.textContent = "+" + p(Math.floor(s / 3600)) + ":" + p(Math.floor(s / 60) % 60) + ":" + p(s % 60);
  }, 250);
  (async function live() {
    for (;;) {
      const r = root();
      const q = "since=" + r.dataset.seq + "&now=" + r.dataset.now + "&wait=" + r.dataset.wait;
      try {
        const resp = await fetch("/_sim/console/view?" + q, { cache: "no-store" });
        if (resp.ok) { const html = await resp.text(); r.outerHTML = html; ticked = performance.now(); }
        else await pause(2000);
      } catch (e) { await pause(2000); }
      await pause(Number(root().dataset.refresh) || 500);
    }
  })();
})();
