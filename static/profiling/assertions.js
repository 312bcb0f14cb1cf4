// Assertions page: picking a trusted profile loads its suggested assertions.
(function () {
  "use strict";
  var pick = document.getElementById("suggest");
  if (pick) pick.addEventListener("change", function () { if (pick.value) location.search = "?suggest=" + encodeURIComponent(pick.value); });
})();
