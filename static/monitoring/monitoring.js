// Renders the Plotly figures built in Python (apps/monitoring/charts.py) into [data-figure] divs.
(function () {
  var data = document.getElementById("monitoring-figures");
  if (!data || !window.Plotly) return;
  var figures = JSON.parse(data.textContent);
  var tpl = document.getElementById("monitoring-template");
  var template = tpl ? JSON.parse(JSON.parse(tpl.textContent)) : null;
  document.querySelectorAll("[data-figure]").forEach(function (el) {
    var raw = figures[el.dataset.figure];
    if (!raw) return;
    var fig = JSON.parse(raw);
    if (!fig.data || !fig.data.length) {
      var note = document.createElement("p");
      note.className = "muted small";
      note.textContent = ((fig.layout.title || {}).text || "") + ": no data in this range.";
      el.replaceChildren(note);
      return;
    }
    if (template && !fig.layout.template) fig.layout.template = template;
    Plotly.newPlot(el, fig.data, fig.layout, {displaylogo: false, responsive: true});
  });
  var picker = document.getElementById("range-picker");
  if (picker) picker.querySelectorAll("select").forEach(function (s) {
    s.addEventListener("change", function () { picker.submit(); });
  });
})();
