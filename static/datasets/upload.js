// Drag-and-drop upload: resumable chunked transfer (asks the server its offset after a dropped
// connection and continues from there), then polls the ingest job and shows a result per file.
(function () {
  "use strict";
  const root = document.getElementById("uploader");
  if (!root) return;
  const csrf = root.querySelector("[name=csrfmiddlewaretoken]").value;
  const CHUNK = parseInt(root.dataset.chunk, 10);
  const input = document.getElementById("file-input");
  const zone = document.getElementById("dropzone");
  const startBtn = document.getElementById("start");
  const tbody = document.querySelector("#results tbody");
  let queue = []; // {file, name, row}

  function fmtBytes(n) {
    // Decimal units, as the server states sizes (1 MB = 1,000,000 bytes).
    const u = ["bytes", "kB", "MB", "GB"]; let i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : n) + " " + u[i];
  }
  function setRow(row, result, reason) {
    const badge = document.createElement("span");
    badge.className = "badge " + ({accepted: "ok", duplicate: "queued", rejected: "bad"}[result] || "");
    badge.textContent = result;
    row.querySelector(".res").replaceChildren(badge);
    row.querySelector(".why").textContent = reason || "";
    row.dataset.result = result;
  }
  function addRow(name, size) {
    const tr = document.createElement("tr");
    tr.innerHTML = "<td class='name'></td><td class='small'></td><td class='res'></td><td class='why small'></td>";
    tr.querySelector(".name").textContent = name;
    tr.children[1].textContent = size === null ? "" : fmtBytes(size);
    tbody.appendChild(tr);
    setRow(tr, "waiting", "");
    return tr;
  }
  function refresh() {
    startBtn.disabled = queue.length === 0;
    startBtn.textContent = "Upload " + queue.length + " file" + (queue.length === 1 ? "" : "s");
  }
  function addFiles(list) {
    for (const { file, name } of list) queue.push({ file, name, row: addRow(name, file.size) });
    refresh();
  }
  // Folders dropped in the browser: walk them so that each file keeps its relative path.
  function walk(entry, prefix) {
    return new Promise((resolve) => {
      if (entry.isFile) { entry.file((f) => resolve([{ file: f, name: prefix + f.name }]), () => resolve([])); return; }
      if (!entry.isDirectory) { resolve([]); return; }
      const reader = entry.createReader(); let all = [];
      const next = () => reader.readEntries(async (entries) => {
        if (!entries.length) { resolve(all); return; }
        for (const e of entries) all = all.concat(await walk(e, prefix + entry.name + "/"));
        next();
      }, () => resolve(all));
      next();
    });
  }
  input.addEventListener("change", () => { addFiles([...input.files].map((f) => ({ file: f, name: f.webkitRelativePath || f.name }))); input.value = ""; });
  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove("over"); }));
  zone.addEventListener("drop", async (e) => {
    const items = [...(e.dataTransfer.items || [])];
    if (items.length && items[0].webkitGetAsEntry) {
      let files = [];
      for (const it of items) { const en = it.webkitGetAsEntry(); if (en) files = files.concat(await walk(en, "")); }
      addFiles(files);
    } else addFiles([...e.dataTransfer.files].map((f) => ({ file: f, name: f.name })));
  });
  document.getElementById("clear").addEventListener("click", () => { queue = []; tbody.innerHTML = ""; refresh(); });

  async function api(method, url, body, headers) {
    const res = await fetch(url, { method, body, credentials: "same-origin",
      headers: Object.assign({ "X-CSRFToken": csrf, "Accept": "application/json" }, headers || {}) });
    let data = {}; try { data = await res.json(); } catch (e) { /* empty body */ }
    return { ok: res.ok, status: res.status, data };
  }
  function errorText(data) {
    if (!data) return "Refused by the server.";
    if (data.detail) return String(data.detail);
    return Object.values(data).flat().join(" ");
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  let sentBytes = 0, totalBytes = 0;
  function showTransfer() {
    const pct = totalBytes ? Math.round((100 * sentBytes) / totalBytes) : 100;
    document.getElementById("p-transfer").style.width = pct + "%";
    document.getElementById("t-transfer").textContent = pct + "% · " + fmtBytes(sentBytes) + " of " + fmtBytes(totalBytes);
  }

  // Send one file in chunks; after a network error ask the server where it stands and resume.
  async function sendFile(entry) {
    const created = await api("POST", root.dataset.uploads, JSON.stringify({ filename: entry.name, size: entry.file.size }),
      { "Content-Type": "application/json" });
    if (!created.ok) { setRow(entry.row, "rejected", errorText(created.data)); sentBytes += entry.file.size; showTransfer(); return null; }
    const url = root.dataset.uploads + created.data.id + "/";
    let offset = created.data.offset, failures = 0, counted = 0;
    setRow(entry.row, "uploading", "");
    while (offset < entry.file.size) {
      const chunk = entry.file.slice(offset, offset + CHUNK);
      try {
        const r = await api("PUT", url, chunk, { "Content-Type": "application/octet-stream", "Upload-Offset": String(offset) });
        if (r.status === 409 && typeof r.data.offset === "number") { offset = r.data.offset; continue; }
        if (!r.ok) throw new Error(errorText(r.data));
        offset = r.data.offset; failures = 0;
      } catch (err) {
        failures++;
        if (failures > 8) { setRow(entry.row, "rejected", "Transfer failed: " + err.message); return null; }
        setRow(entry.row, "uploading", "Connection lost, resuming… (" + failures + ")");
        await sleep(Math.min(8000, 500 * 2 ** failures));
        const s = await api("GET", url).catch(() => null);
        if (s && s.ok) offset = s.data.offset;
        continue;
      }
      sentBytes += offset - counted; counted = offset; showTransfer();
    }
    sentBytes += entry.file.size - counted; showTransfer();
    setRow(entry.row, "uploaded", "");
    return created.data.id;
  }

  function showJob(j) {
    const pct = j.total ? Math.round((100 * j.processed) / j.total) : (j.status === "done" ? 100 : 0);
    document.getElementById("p-process").style.width = pct + "%";
    document.getElementById("t-process").textContent = j.status + " · " + j.processed + "/" + j.total;
    const link = document.createElement("a");
    link.href = j.url; link.textContent = "import #" + j.id;
    document.getElementById("summary").replaceChildren(
      j.accepted + " accepted · " + j.duplicates + " duplicate · " + j.rejected + " rejected · ", link);
  }

  async function fillResults(jobUrl) {
    let after = "", rows = [];
    for (;;) {
      const r = await api("GET", jobUrl + (after ? "?after=" + after : ""));
      if (!r.ok) break;
      rows = rows.concat(r.data.files, r.data.archives_rejected || []);
      if (!r.data.next_after) break;
      after = r.data.next_after;
    }
    const kept = [...tbody.querySelectorAll("tr")].filter((tr) => tr.dataset.result === "rejected");
    tbody.innerHTML = ""; kept.forEach((tr) => tbody.appendChild(tr));
    rows.forEach((f) => setRow(addRow(f.name, null), f.result, f.reason));
  }

  startBtn.addEventListener("click", async (e) => {
    e.preventDefault();
    const batch = queue; queue = []; refresh();
    document.getElementById("progress-card").hidden = false;
    sentBytes = 0; totalBytes = batch.reduce((s, x) => s + x.file.size, 0); showTransfer();
    const ids = [];
    for (const entry of batch) { const id = await sendFile(entry); if (id) ids.push(id); }
    if (!ids.length) { document.getElementById("t-process").textContent = "nothing to process"; return; }
    const started = await api("POST", root.dataset.imports, JSON.stringify({ uploads: ids,
      labels_from_folders: document.getElementById("labels-from-folders").checked }), { "Content-Type": "application/json" });
    if (!started.ok) { document.getElementById("summary").textContent = errorText(started.data); return; }
    const jobUrl = root.dataset.imports + started.data.id + "/";
    let job = started.data;
    showJob(job);
    while (job.status === "queued" || job.status === "running") {
      await sleep(800);
      const r = await api("GET", jobUrl);
      if (r.ok) { job = r.data; showJob(job); }
    }
    await fillResults(jobUrl);
  });
})();
