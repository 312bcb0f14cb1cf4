// The labeling workspace: keyboard first, prefetching, zoom/pan, bounding boxes.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("lw-config").textContent);
  const API = cfg.api; // …/labeling/
  const classes = cfg.schema.classes;
  const byKey = {}, byName = {};
  classes.forEach((c) => { if (c.hotkey) byKey[c.hotkey.toLowerCase()] = c; byName[c.name] = c; });
  const regionsOn = cfg.schema.regions_enabled;
  const $ = (id) => document.getElementById(id);
  const stage = $("lw-stage"), world = $("lw-world"), img = $("lw-img"), svg = $("lw-svg");
  const csrf = (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || "";

  let current = null;        // item shown
  let queue = [];            // prefetched items, next first
  const past = [];           // [{item, action: "label"|"skip", label, revisionAfter}]
  let fetching = null;
  let chain = Promise.resolve();
  let pending = 0;
  const progress = Object.assign({today: 0, left: 0, rate_per_hour: 0}, cfg.progress);
  const preloaded = new Map();

  // --- server ------------------------------------------------------------------------------------
  async function call(path, body, method) {
    const r = await fetch(API + path, {
      method: method || "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json"},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await r.json(); } catch (e) { data = {}; }
    if (!r.ok) { const err = new Error(messageOf(data, r.status)); err.status = r.status; err.data = data; throw err; }
    return data;
  }
  function messageOf(data, status) {
    if (data && typeof data.detail === "string") return data.detail;
    if (data && typeof data === "object") {
      const parts = [];
      Object.keys(data).forEach((k) => { const v = data[k]; parts.push(Array.isArray(v) ? v.join(" ") : String(v)); });
      if (parts.length) return parts.join(" ");
    }
    return "The server answered " + status + ". Your last action may not be saved; reload the page.";
  }
  // Writes go one after another, in the order the labeler pressed the keys.
  function enqueue(fn) {
    pending++; savingText();
    chain = chain.then(fn).catch(handleError).finally(() => {
      pending--; savingText();
      if (!pending) refreshProgress(); // all saved: the server's counts are now exact
    });
    return chain;
  }
  function savingText() {
    $("st-saving").textContent = pending ? "Saving… (" + pending + ")" : "All saved";
    $("st-saving").dataset.pending = pending;
  }
  function handleError(err) {
    if (err.status === 409) { showMsg(err.message, "error"); return; }
    showMsg(err.message || String(err), "error");
  }
  function showMsg(text, kind) {
    const m = $("lw-msg"); m.textContent = text; m.className = "lw-msg" + (kind === "info" ? " info" : ""); m.hidden = !text;
    if (kind === "info") setTimeout(() => { if (m.textContent === text) m.hidden = true; }, 2500);
  }

  // --- queue and prefetch --------------------------------------------------------------------------
  function known(id) {
    return (current && current.id === id) || queue.some((i) => i.id === id);
  }
  function preload(item) {
    if (!preloaded.has(item.id)) { const im = new Image(); im.decoding = "async"; im.src = item.image; preloaded.set(item.id, im); }
  }
  const LOW = 3, BATCH = 6;   // ask for BATCH more when fewer than LOW are prefetched
  function take(items) {
    // The server may still hand back an item whose label is on its way (writes are queued): skip
    // anything this page already showed.
    items.forEach((it) => { if (!known(it.id) && !past.some((p) => p.item.id === it.id)) { queue.push(it); preload(it); } });
  }
  // The server hands out the items this page holds (current and prefetched) first: ask for those
  // plus BATCH new ones.
  function wanted() { return Math.min(20, queue.length + (current ? 1 : 0) + BATCH); }
  function refill() {
    if (fetching || queue.length >= LOW) return fetching;
    fetching = call("queue/next/", {n: wanted()}).then((data) => take(data.items))
      .catch(handleError).finally(() => { fetching = null; });
    return fetching;
  }
  // A save that is about to leave the prefetch low brings the next items in its own answer (one
  // round trip instead of two) when it can go out at once; behind other saves it would come too
  // late, so then advance() asks on its own. Returns [body field, callback for next_items].
  function refillWith() {
    if (fetching || pending || queue.length > LOW) return [0, () => {}];
    let done;
    fetching = new Promise((resolve) => { done = resolve; });
    return [wanted() - 1, (items) => { take(items || []); fetching = null; done(); }];
  }
  async function advance() {
    if (!queue.length) {
      // Nothing prefetched: show nothing (so no key can hit the previous image) until the server answers.
      show(null, true);
      await refill();
      // That answer may predate this page's own queued writes (and hold only items already seen):
      // once they are saved, ask again before saying the queue is empty.
      if (!queue.length && !current) { await chain; await refill(); }
      if (current) return; // an undo or back brought an item meanwhile
    }
    show(queue.shift() || null);
    refill();
  }

  // --- showing an item -----------------------------------------------------------------------------
  let view = {s: 1, x: 0, y: 0};
  let boxes = [], selected = -1;
  function show(item, loading) {
    current = item;
    $("lw-empty").hidden = !!item || !!loading;
    world.style.visibility = item ? "visible" : "hidden";
    if (!item) { $("lw-name").textContent = loading ? "Loading…" : "—"; $("lw-was").textContent = ""; $("lw-reason").hidden = true; markClass(null); return; }
    world.style.width = item.width + "px"; world.style.height = item.height + "px";
    svg.setAttribute("viewBox", "0 0 " + item.width + " " + item.height);
    const pre = preloaded.get(item.id);
    img.src = pre ? pre.src : item.image;
    $("lw-name").textContent = item.name;
    const was = item.mine || item.label;
    $("lw-was").textContent = was ? "labeled " + was + (item.label_by ? " by " + item.label_by : "") : "";
    $("lw-reason").hidden = !item.reason; $("lw-reason").textContent = item.reason ? "Second look: " + item.reason : "";
    markClass(item.mine || null);
    boxes = (item.regions || []).map((b) => Object.assign({}, b)); selected = -1;
    fit(); drawBoxes();
    stage.focus({preventScroll: true});
  }
  function markClass(name) {
    document.querySelectorAll(".lw-class").forEach((b) => b.classList.toggle("on", b.dataset.class === name));
  }
  function flash(cls) {
    let f = stage.querySelector(".lw-flash");
    if (!f) { f = document.createElement("div"); f.className = "lw-flash"; stage.appendChild(f); }
    f.textContent = cls.name; f.style.background = cls.color; f.classList.add("on");
    requestAnimationFrame(() => requestAnimationFrame(() => f.classList.remove("on")));
  }
  function stripAdd(item, cls) {
    const strip = $("lw-strip");
    const t = document.createElement("div"); t.className = "t"; t.style.setProperty("--c", cls ? cls.color : "#777");
    t.dataset.item = item.id;
    t.innerHTML = '<img alt=""><span></span>';
    t.querySelector("img").src = item.thumb; t.querySelector("span").textContent = cls ? cls.name : "skipped";
    strip.prepend(t);
    while (strip.children.length > 14) strip.lastChild.remove();
  }
  function stats() {
    $("st-today").textContent = progress.today; $("st-left").textContent = Math.max(0, progress.left);
    $("st-rate").textContent = progress.rate_per_hour;
  }
  // After saves: my own numbers (cheap) every time, the project's "left" at most once a minute
  // (it counts the whole project); in between "left" goes down with my own saves.
  let fullAt = Date.now();
  function refreshProgress() {
    const full = Date.now() - fullAt > 60000;
    if (full) fullAt = Date.now();
    call(full ? "progress/" : "progress/?only=mine", undefined, "GET").then((p) => { Object.assign(progress, p); stats(); }).catch(() => {});
  }

  // --- actions -------------------------------------------------------------------------------------
  function label(cls) {
    if (!current) return;
    const item = current, fresh = !item.mine && !item.label;
    const entry = {item: item, action: "label", label: cls.name, revisionAfter: null};
    const [more, arrived] = refillWith();
    const body = {label_class: String(cls.id), expected_revision: item.revision, next: more};
    if (regionsOn) body.regions = boxes.map((b) => ({x: b.x, y: b.y, w: b.w, h: b.h}));
    past.push(entry); stripAdd(item, cls); flash(cls);
    if (fresh) { progress.today++; progress.left--; stats(); }
    showMsg("", "info");
    enqueue(() => call("items/" + item.id + "/label/", body).then((saved) => {
      const {next_items: nextItems, ...mine} = saved;
      entry.revisionAfter = mine.revision; entry.item = Object.assign(item, mine);
      arrived(nextItems);
    }, (err) => {
      arrived([]);
      past.splice(past.indexOf(entry), 1);
      if (fresh) { progress.today--; progress.left++; stats(); }
      if (err.status === 409) {
        // Someone else saved first: bring the item back, freshly loaded, and say so.
        return call("items/" + item.id + "/", undefined, "GET").then((now) => {
          if (current) queue.unshift(current);
          show(now); throw err;
        });
      }
      throw err;
    }));
    advance();
  }
  function skip() {
    if (!current) return;
    const item = current;
    const [more, arrived] = refillWith();
    past.push({item: item, action: "skip"}); stripAdd(item, null);
    enqueue(() => call("items/" + item.id + "/skip/", {next: more}).then((r) => arrived(r.next_items),
                                                                       (err) => { arrived([]); throw err; }));
    advance();
  }
  function back() {
    if (!past.length) { showMsg("Nothing to go back to yet.", "info"); return; }
    const entry = past.pop();
    if (current) queue.unshift(current);
    const strip = $("lw-strip"); if (strip.firstChild) strip.firstChild.remove();
    enqueue(() => call("items/" + entry.item.id + "/", undefined, "GET").then((now) => {
      if (current && current.id === entry.item.id) { Object.assign(current, now); show(current); }
    }));
    show(entry.item);
    showMsg("Back at " + entry.item.name + ": press a class key to change its label.", "info");
  }
  function undo() {
    const i = past.length - 1;
    if (i < 0) { showMsg("Nothing to undo.", "info"); return; }
    const entry = past.pop();
    const strip = $("lw-strip"); if (strip.firstChild) strip.firstChild.remove();
    if (current) queue.unshift(current);
    if (entry.action === "skip") { show(entry.item); showMsg("Skip undone.", "info"); return; }
    show(Object.assign(entry.item, {mine: null}));
    enqueue(() => call("items/" + entry.item.id + "/undo/", {expected_revision: entry.revisionAfter}).then((now) => {
      progress.today = Math.max(0, progress.today - 1); progress.left++; stats();
      if (current && current.id === entry.item.id) { Object.assign(current, now); show(current); }
      showMsg("Undone: " + entry.item.name + " is unlabeled again.", "info");
    }));
  }

  // --- zoom and pan --------------------------------------------------------------------------------
  function apply() {
    world.style.transform = "translate(" + view.x + "px," + view.y + "px) scale(" + view.s + ")";
    $("lw-zoom").textContent = Math.round(view.s * 100) + "%";
  }
  function fit() {
    if (!current) return;
    const r = stage.getBoundingClientRect();
    view.s = Math.min(r.width / current.width, r.height / current.height);
    view.x = (r.width - current.width * view.s) / 2; view.y = (r.height - current.height * view.s) / 2;
    apply();
  }
  function zoomAt(factor, cx, cy) {
    const ns = Math.max(0.05, Math.min(16, view.s * factor));
    view.x = cx - (cx - view.x) * (ns / view.s); view.y = cy - (cy - view.y) * (ns / view.s); view.s = ns; apply();
  }
  function toImage(ev) {
    const r = stage.getBoundingClientRect();
    return {x: (ev.clientX - r.left - view.x) / view.s, y: (ev.clientY - r.top - view.y) / view.s};
  }
  stage.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = stage.getBoundingClientRect();
    zoomAt(ev.deltaY < 0 ? 1.15 : 1 / 1.15, ev.clientX - r.left, ev.clientY - r.top);
  }, {passive: false});
  window.addEventListener("resize", fit);
  $("lw-fit").addEventListener("click", fit);

  // --- regions -------------------------------------------------------------------------------------
  let drawing = false, drag = null;
  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
  function drawBoxes() {
    svg.innerHTML = "";
    boxes.forEach((b, i) => {
      const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      r.setAttribute("class", "box" + (i === selected ? " sel" : ""));
      ["x", "y"].forEach((k) => r.setAttribute(k, b[k])); r.setAttribute("width", b.w); r.setAttribute("height", b.h);
      r.dataset.i = i; svg.appendChild(r);
      if (i === selected) {
        const h = document.createElementNS("http://www.w3.org/2000/svg", "rect");
        const s = 10 / view.s;
        h.setAttribute("class", "handle"); h.setAttribute("x", b.x + b.w - s / 2); h.setAttribute("y", b.y + b.h - s / 2);
        h.setAttribute("width", s); h.setAttribute("height", s); h.dataset.handle = i; svg.appendChild(h);
      }
    });
  }
  function setTool(on) {
    drawing = on && regionsOn; stage.classList.toggle("drawing", drawing);
    const t = $("lw-tool"); if (t) t.classList.toggle("secondary", !drawing);
  }
  if ($("lw-tool")) $("lw-tool").addEventListener("click", () => setTool(!drawing));
  stage.addEventListener("mousedown", (ev) => {
    if (!current || ev.button !== 0) return;
    stage.focus({preventScroll: true});
    const p = toImage(ev), t = ev.target;
    if (t.dataset && t.dataset.handle !== undefined) {
      drag = {kind: "resize", i: +t.dataset.handle, p: p, b: Object.assign({}, boxes[+t.dataset.handle])};
    } else if (t.dataset && t.dataset.i !== undefined) {
      selected = +t.dataset.i; drawBoxes();
      drag = {kind: "move", i: selected, p: p, b: Object.assign({}, boxes[selected])};
    } else if (drawing) {
      boxes.push({x: clamp(p.x, 0, current.width), y: clamp(p.y, 0, current.height), w: 0, h: 0});
      selected = boxes.length - 1;
      drag = {kind: "draw", i: selected, p: {x: boxes[selected].x, y: boxes[selected].y}};
    } else {
      selected = -1; drawBoxes();
      drag = {kind: "pan", x: ev.clientX - view.x, y: ev.clientY - view.y}; stage.classList.add("panning");
    }
    ev.preventDefault();
  });
  window.addEventListener("mousemove", (ev) => {
    if (!drag) return;
    if (drag.kind === "pan") { view.x = ev.clientX - drag.x; view.y = ev.clientY - drag.y; apply(); return; }
    const p = toImage(ev), b = boxes[drag.i], W = current.width, H = current.height;
    if (drag.kind === "draw") {
      const x2 = clamp(p.x, 0, W), y2 = clamp(p.y, 0, H);
      b.x = Math.min(drag.p.x, x2); b.y = Math.min(drag.p.y, y2); b.w = Math.abs(x2 - drag.p.x); b.h = Math.abs(y2 - drag.p.y);
    } else if (drag.kind === "move") {
      b.x = clamp(drag.b.x + p.x - drag.p.x, 0, W - b.w); b.y = clamp(drag.b.y + p.y - drag.p.y, 0, H - b.h);
    } else if (drag.kind === "resize") {
      b.w = clamp(drag.b.w + p.x - drag.p.x, 2, W - b.x); b.h = clamp(drag.b.h + p.y - drag.p.y, 2, H - b.y);
    }
    drawBoxes();
  });
  window.addEventListener("mouseup", () => {
    if (drag && drag.kind === "draw") {
      const b = boxes[drag.i];
      if (b.w < 3 || b.h < 3) { boxes.splice(drag.i, 1); selected = -1; }
      setTool(false);
    }
    boxes.forEach((b) => { ["x", "y", "w", "h"].forEach((k) => { b[k] = Math.round(b[k] * 10) / 10; }); });
    drag = null; stage.classList.remove("panning"); drawBoxes();
  });

  // --- keyboard ------------------------------------------------------------------------------------
  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest && ev.target.closest("input, textarea, select")) return;
    const k = ev.key.toLowerCase();
    if ((ev.ctrlKey || ev.metaKey) && k === "z") { ev.preventDefault(); undo(); return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.repeat && byKey[k]) return; // holding a key must not label a run of images
    if (byKey[k]) { ev.preventDefault(); label(byKey[k]); return; }
    const r = stage.getBoundingClientRect();
    switch (ev.key) {
      case "s": case "S": ev.preventDefault(); skip(); break;
      case "b": case "B": case "ArrowLeft": ev.preventDefault(); back(); break;
      case "u": case "U": ev.preventDefault(); undo(); break;
      case "r": case "R": if (regionsOn) { ev.preventDefault(); setTool(!drawing); } break;
      case "Delete": case "Backspace":
        if (selected >= 0) { ev.preventDefault(); boxes.splice(selected, 1); selected = -1; drawBoxes(); } break;
      case "Escape": setTool(false); selected = -1; drawBoxes(); break;
      case "+": case "=": zoomAt(1.25, r.width / 2, r.height / 2); break;
      case "-": case "_": zoomAt(0.8, r.width / 2, r.height / 2); break;
      case "0": fit(); break;
      case "?": $("lw-keys").classList.toggle("hide"); break;
      case "g": case "G": chain.then(() => { window.location.href = cfg.grid; }); break;
    }
  });
  document.querySelectorAll(".lw-class").forEach((b) => b.addEventListener("click", () => label(byName[b.dataset.class])));

  window.labeling = {idle: () => chain, state: () => ({current: current && current.id, queue: queue.map((i) => i.id), past: past.length, pending: pending})};
  stats();
  refill().then(() => advance());
})();
