// Draws the figures built in Python (parallel coordinates on the compare and sweep pages).
(function () {
  "use strict";
  [["fig-par", "chart-par"], ["fig-overlay-loss", "chart-overlay-loss"], ["fig-overlay-acc", "chart-overlay-acc"]]
    .forEach(function (pair) {
      var el = document.getElementById(pair[0]), target = document.getElementById(pair[1]);
      if (!el || !target || !window.Plotly) return;
      var t = JSON.parse(el.textContent);
      if (!t) return;
      var f = typeof t === "string" ? JSON.parse(t) : t;
      Plotly.newPlot(target, f.data, f.layout, { displayModeBar: false, responsive: true });
    });
})();
