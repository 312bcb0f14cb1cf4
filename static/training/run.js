// The live run page: draws loss/accuracy per epoch as they arrive, moves the progress bar, shows
// the ETA and the log, polling the run's live endpoint until it finishes.
(function () {
  "use strict";
  var FINISHED = ["succeeded", "failed", "cancelled"];
  var cfg = { displayModeBar: false, responsive: true };
  function fig(id) { return JSON.parse(JSON.parse(document.getElementById(id).textContent)); }
  var loss = fig("fig-loss"), acc = fig("fig-acc");
  Plotly.newPlot("chart-loss", loss.data, loss.layout, cfg);
  Plotly.newPlot("chart-acc", acc.data, acc.layout, cfg);

  function traces(epochs, family) {
    var keys = {};
    epochs.forEach(function (e) { Object.keys(e).forEach(function (k) { if (k !== "epoch" && k !== "seconds" && k !== "learning_rate") keys[k] = 1; }); });
    return Object.keys(keys).sort().filter(function (k) { return (k.indexOf("loss") >= 0) === (family === "loss"); })
      .map(function (k) {
        return { x: epochs.map(function (e) { return e.epoch; }), y: epochs.map(function (e) { return e[k]; }),
                 mode: "lines+markers", name: k, line: { dash: k.indexOf("val_") === 0 ? "dot" : "solid" } };
      });
  }
  function eta(s) {
    if (s === null || s === undefined) return "";
    var m = Math.floor(s / 60), r = Math.round(s % 60);
    return "about " + (m ? m + " min " : "") + r + " s left";
  }
  var shown = -1;
  function render(live) {
    var badge = document.getElementById("run-status");
    badge.textContent = live.status; badge.className = "badge " + live.status;
    document.getElementById("run-progress").style.width = Math.round(live.progress * 100) + "%";
    document.getElementById("run-progress-text").textContent = "epoch " + live.epochs_done + "/" + live.epochs_total +
      (live.status === "running" && live.batches_per_epoch ? " · batch " + live.current_batch + "/" + live.batches_per_epoch : "") +
      (live.cancel_requested && live.status === "running" ? " · stopping…" : "");
    document.getElementById("run-eta").textContent = eta(live.eta_seconds);
    var err = document.getElementById("run-error");
    err.hidden = !live.error; err.textContent = live.error || "";
    var waiting = document.getElementById("run-waiting");
    if (waiting) { waiting.hidden = !live.waiting; waiting.textContent = live.waiting || ""; }
    var log = document.getElementById("run-log");
    var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = live.log; if (atEnd) log.scrollTop = log.scrollHeight;
    if (live.epochs.length !== shown) {
      shown = live.epochs.length;
      Plotly.react("chart-loss", traces(live.epochs, "loss"), loss.layout, cfg);
      Plotly.react("chart-acc", traces(live.epochs, "acc"), acc.layout, cfg);
    }
    return FINISHED.indexOf(live.status) < 0;
  }
  var first = JSON.parse(document.getElementById("run-live").textContent);
  var wasActive = render(first);
  function poll() {
    fetch(JSON.parse(document.getElementById("page-config").textContent).live_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (live) {
        if (render(live)) { setTimeout(poll, 2000); }
        else if (wasActive) { window.location.reload(); }  // show the evaluation link and artifacts
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  if (wasActive) setTimeout(poll, 1500);
})();
