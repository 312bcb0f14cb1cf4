// Render every Plotly figure whose JSON sits in <script id="fig-NAME"> into <div id="chart-NAME">.
(function () {
  document.querySelectorAll('script[id^="fig-"]').forEach(function (el) {
    var fig = JSON.parse(el.textContent);
    if (typeof fig === "string") fig = JSON.parse(fig);
    var target = document.getElementById("chart-" + el.id.slice(4));
    if (!fig || !target || !window.Plotly) return;
    Plotly.newPlot(target, fig.data, fig.layout, {displayModeBar: false, responsive: true});
  });
})();
