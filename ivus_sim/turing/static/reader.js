// Keyboard answers for the reader study: arrows or F/J choose a frame, 1-5 set the confidence.
// The page works without this script (mouse only); it never reveals anything about the answer.
(function () {
  "use strict";
  var form = document.getElementById("answer-form");
  if (!form) { return; }
  var sent = false;
  form.addEventListener("submit", function (ev) {
    if (sent) { ev.preventDefault(); return; }
    sent = true;
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) { return; }
    var key = ev.key;
    if (key >= "1" && key <= "5") {
      var radio = document.getElementById("confidence-" + key);
      if (radio) { radio.checked = true; ev.preventDefault(); }
      return;
    }
    var side = null;
    if (key === "ArrowLeft" || key === "f" || key === "F") { side = "left"; }
    if (key === "ArrowRight" || key === "j" || key === "J") { side = "right"; }
    if (side !== null && !sent) {
      ev.preventDefault();
      document.getElementById("choose-" + side).click();
    }
  });
})();
