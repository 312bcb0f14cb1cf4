// Page messages show as toasts in the corner of the viewport, where they are seen whatever the scroll;
// a success fades after a few seconds, an error stays until closed.
(function () {
  document.querySelectorAll(".messages .msg").forEach(function (m) {
    var close = document.createElement("button");
    close.type = "button"; close.className = "msg-close"; close.setAttribute("aria-label", "Close"); close.textContent = "×";
    close.addEventListener("click", function () { m.remove(); });
    m.appendChild(close);
    if (m.classList.contains("success")) setTimeout(function () { m.classList.add("fading"); }, 6000);
  });
})();
