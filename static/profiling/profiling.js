// Profiling pages: render the Plotly figures built on the server, and poll a running job's progress.
(function () {
  var figs = document.getElementById("figs");
  var data = figs && window.Plotly ? JSON.parse(figs.textContent) : null;
  // Figures in a hidden block are drawn when it is first shown (Plotly cannot size a hidden div).
  function draw(root) {
    if (!data) return;
    root.querySelectorAll("[data-fig]").forEach(function (el) {
      if (el.dataset.drawn || el.closest("[hidden]")) return;
      var f = data[el.dataset.fig];
      if (!f) return;
      f = typeof f === "string" ? JSON.parse(f) : f;
      el.dataset.drawn = "1";
      Plotly.newPlot(el, f.data, f.layout, {displaylogo: false, responsive: true,
        modeBarButtonsToRemove: ["lasso2d", "select2d"]});
    });
  }
  draw(document);
  document.querySelectorAll("input[name=colourby]").forEach(function (radio) {
    radio.addEventListener("change", function () {
      document.querySelectorAll("[data-colourby]").forEach(function (grid) {
        grid.hidden = grid.dataset.colourby !== radio.value;
      });
      draw(document);
    });
  });
  var box = document.querySelector("[data-poll]");
  if (box) {
    var bar = box.querySelector(".progress > div"), text = box.querySelector("[data-progress-text]");
    var tick = function () {
      fetch(box.dataset.poll, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (run) {
          bar.style.width = run.percent + "%";
          text.textContent = run.processed + " / " + run.total + " images (" + run.status + ")";
          if (run.status === "queued" || run.status === "running") setTimeout(tick, 1500);
          else window.location.reload();
        })
        .catch(function () { setTimeout(tick, 4000); });
    };
    setTimeout(tick, 1000);
  }
})();
