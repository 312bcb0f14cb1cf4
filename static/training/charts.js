// Draws the figures built in Python (parallel coordinates on the compare and sweep pages).
(function () {
  "use strict";
  var el = document.getElementById("fig-par");
  if (!el) return;
  var t = JSON.parse(el.textContent);
  if (!t) return;
  var f = JSON.parse(t);
  Plotly.newPlot("chart-par", f.data, f.layout, { displayModeBar: false, responsive: true });
})();
