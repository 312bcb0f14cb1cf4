// Grid labeling: shift-click ranges, select all/none, keyboard shortcuts; the filter submits on change.
(function () {
  var show = document.getElementById("show");
  if (show) show.addEventListener("change", function () { show.form.submit(); });
  const boxes = Array.from(document.querySelectorAll(".thumbs input"));
  let last = null;
  function sync() {
    boxes.forEach((b) => b.parentElement.classList.toggle("sel", b.checked));
    document.querySelector("#sel-count b").textContent = boxes.filter((b) => b.checked).length;
  }
  boxes.forEach((b, i) => b.addEventListener("click", (ev) => {
    if (ev.shiftKey && last !== null) { const [a, z] = [Math.min(last, i), Math.max(last, i)]; for (let j = a; j <= z; j++) boxes[j].checked = b.checked; }
    last = i; sync();
  }));
  document.getElementById("sel-all").onclick = () => { boxes.forEach((b) => b.checked = true); sync(); };
  document.getElementById("sel-none").onclick = () => { boxes.forEach((b) => b.checked = false); sync(); };
  const keys = {};
  document.querySelectorAll("button[name=label_class]").forEach((btn) => { const k = btn.querySelector(".keycap"); if (k) keys[k.textContent.trim()] = btn; });
  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest("select, input[type=text]")) return;
    if (ev.key === "a") { boxes.forEach((b) => b.checked = true); sync(); }
    else if (ev.key === "Escape") { boxes.forEach((b) => b.checked = false); sync(); }
    else if (keys[ev.key] && boxes.some((b) => b.checked)) keys[ev.key].click();
  });
  sync();
})();
