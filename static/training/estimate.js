// New run form: how long the run is expected to take, asked of the portal whenever a field changes.
(function () {
  "use strict";
  var form = document.getElementById("run-form"), out = document.getElementById("run-estimate");
  var conf = document.getElementById("estimate-config");
  if (!form || !out || !conf) return;
  var ESTIMATE = JSON.parse(conf.textContent);
  var numbers = JSON.parse(document.getElementById("version-numbers").textContent);
  var skip = { csrfmiddlewaretoken: 1, dataset_version: 1, name: 1, base_model: 1 };
  var timer = null;
  function config() {
    var c = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || skip[el.name] || el.type === "file") return;
      if (el.type === "checkbox") { c[el.name] = el.checked; return; }
      if (el.value === "") return;
      c[el.name] = el.type === "number" || el.name === "channels" ? Number(el.value) : el.value;
    });
    return c;
  }
  function ask() {
    var version = numbers[form.elements.dataset_version.value];
    if (!version) { out.textContent = ""; return; }
    fetch(ESTIMATE.url, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": ESTIMATE.csrf },
      body: JSON.stringify({ dataset_version: version, config: config() }) })
      .then(function (r) { return r.json().then(function (b) { return [r.ok, b]; }); })
      .then(function (res) {
        if (res[0]) { out.textContent = "Expected: " + res[1].text + " (" + res[1].basis + ")."; out.className = "small"; }
        else { out.textContent = "No estimate until the settings are valid."; out.className = "small muted"; }
      })
      .catch(function () { out.textContent = ""; });
  }
  form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(ask, 200); });
  ask();
})();
