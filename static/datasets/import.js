// Polls one import job and fills its per-file result table.
(function () {
  "use strict";
  const box = document.getElementById("job");
  if (!box) return;
  const tbody = document.querySelector("#results tbody");
  const only = document.getElementById("only");
  const cls = { accepted: "ok", duplicate: "queued", rejected: "bad", pending: "" };

  async function get(url) { const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }); return r.ok ? r.json() : null; }
  function show(j) {
    const pct = j.total ? Math.round((100 * j.processed) / j.total) : (j.status === "done" ? 100 : 0);
    document.getElementById("p-process").style.width = pct + "%";
    document.getElementById("t-process").textContent = j.processed + "/" + j.total;
    const st = document.getElementById("j-status"); st.textContent = j.status; st.className = "badge " + j.status;
    ["accepted", "duplicates", "rejected", "skipped"].forEach((k) => { document.getElementById("c-" + k).textContent = j[k]; });
    document.getElementById("j-error").textContent = j.error || "";
  }
  async function fill() {
    const base = box.dataset.api + (only.value ? "?result=" + only.value : "");
    const j = await get(base);
    if (!j) return null;
    tbody.innerHTML = "";
    (j.archives_rejected || []).concat(j.files).forEach((f) => {
      const tr = document.createElement("tr");
      tr.innerHTML = "<td></td><td class='small'></td><td></td><td><span class='badge'></span></td><td class='small'></td>";
      tr.children[0].textContent = f.name; tr.children[1].textContent = f.archive_name || "";
      tr.children[2].textContent = f.label || "";
      const b = tr.querySelector(".badge"); b.textContent = f.result; b.className = "badge " + (cls[f.result] || "");
      tr.children[4].textContent = f.reason || "";
      tbody.appendChild(tr);
    });
    document.getElementById("more").textContent = j.next_after ? "Showing the first " + j.files.length + " files; filter to see others (the API pages on with ?after=)." : "";
    return j;
  }
  only.addEventListener("change", fill);
  (async function loop() {
    let j = await fill();
    while (j && (j.status === "queued" || j.status === "running")) {
      show(j);
      await new Promise((r) => setTimeout(r, 1000));
      j = await get(box.dataset.api);
    }
    if (j) { show(j); await fill(); }
  })();
})();
