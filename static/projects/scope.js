// Scope form: "Add a target" clones the last target row (the formset's next index).
(function () {
  "use strict";
  var add = document.getElementById("add-target");
  if (!add) return;
  add.addEventListener("click", function () {
  const total = document.getElementById("id_m-TOTAL_FORMS");
  const rows = document.querySelectorAll("#targets .target-row");
  const clone = rows[rows.length - 1].cloneNode(true);
  const n = parseInt(total.value, 10);
  clone.querySelectorAll("input, select").forEach(function (el) {
    el.name = el.name.replace(/m-\d+-/, "m-" + n + "-");
    el.id = el.id.replace(/m-\d+-/, "m-" + n + "-");
    if (el.type === "checkbox") el.checked = false; else if (el.tagName !== "SELECT") el.value = "";
  });
  rows[rows.length - 1].after(clone);
  total.value = n + 1;
});
})();
