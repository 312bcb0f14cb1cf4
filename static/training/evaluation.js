// Evaluation page: draws the confusion matrix and curves; a click on a cell shows its images;
// selected images go to the labeling queue for a second look.
(function () {
  "use strict";
  var cfg = { displayModeBar: false, responsive: true };
  var EVAL = JSON.parse(document.getElementById("eval-config").textContent);
  function fig(id) { var t = JSON.parse(document.getElementById(id).textContent); return t ? JSON.parse(t) : null; }
  var cm = fig("fig-cm"), roc = fig("fig-roc"), pr = fig("fig-pr");
  Plotly.newPlot("chart-cm", cm.data, cm.layout, cfg);
  if (roc) Plotly.newPlot("chart-roc", roc.data, roc.layout, cfg);
  if (pr) Plotly.newPlot("chart-pr", pr.data, pr.layout, cfg);
  var gallery = document.getElementById("gallery"), button = document.getElementById("send-review");

  function selected() {
    return Array.prototype.map.call(gallery.querySelectorAll("input:checked"), function (i) { return +i.value; });
  }
  var heat = document.getElementById("heat-toggle"), current = [];
  function load(truth, pred) {
    current = [truth, pred];
    var q = truth !== undefined ? "?true=" + encodeURIComponent(truth) + "&pred=" + encodeURIComponent(pred) : "";
    if (heat && heat.checked) q += (q ? "&" : "?") + "heatmaps=1";
    document.getElementById("gallery-title").textContent = truth !== undefined ?
      "True " + truth + " → predicted " + pred : "Misclassified test images";
    document.getElementById("gallery-note").textContent = truth !== undefined ?
      "Images of one confusion-matrix cell; click another cell to switch." :
      "Click a cell of the confusion matrix to see its images; showing every misclassified image.";
    fetch(EVAL.url + q, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (rows) {
      gallery.innerHTML = "";
      if (!rows.length) gallery.innerHTML = '<p class="muted">No images in this cell.</p>';
      rows.forEach(function (r) {
        var f = document.createElement("figure");
        f.dataset.item = r.item;
        var wrong = r.true !== r.pred;
        // Class names are user text: built as nodes, never as HTML.
        var img = document.createElement("img");
        img.loading = "lazy"; img.alt = "item " + r.item;
        img.src = heat && heat.checked && r.heatmap_url ? r.heatmap_url : r.image_url;
        if (heat && heat.checked && r.heatmap_url) img.className = "heatmap";
        var cap = document.createElement("figcaption"), holder = cap;
        if (button && wrong) {
          holder = document.createElement("label"); holder.style.fontWeight = "400";
          var box = document.createElement("input"); box.type = "checkbox"; box.value = r.item;
          holder.append(box, " ");
          cap.appendChild(holder);
        }
        var t = document.createElement("b"), p = document.createElement("b");
        t.textContent = r.true; p.textContent = r.pred;
        holder.append("true ", t, " → ", p, " (" + Math.round(r.confidence * 100) + "%)");
        f.append(img, cap);
        gallery.appendChild(f);
      });
      if (button) button.disabled = true;
    });
  }
  if (heat) heat.addEventListener("change", function () { load(current[0], current[1]); });
  document.getElementById("chart-cm").on("plotly_click", function (ev) {
    var p = ev.points[0]; load(p.y, p.x);
  });
  gallery.addEventListener("change", function () { if (button) button.disabled = !selected().length; });
  if (button) button.addEventListener("click", function () {
    var items = selected();
    fetch(EVAL.url, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": EVAL.csrf },
      body: JSON.stringify({ items: items }) })
      .then(function (r) { return r.json().then(function (b) { return [r.ok, b]; }); })
      .then(function (res) {
        document.getElementById("review-result").textContent = res[0] ?
          (res[1].queued + " of " + res[1].requested + " image(s) sent to the labeling queue" +
           (res[1].queued < res[1].requested ? " (no labeling queue is available for the rest)." : ".")) :
          JSON.stringify(res[1]);
      });
  });
  load();
})();
