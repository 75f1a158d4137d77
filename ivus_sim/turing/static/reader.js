// Reader study pages: keyboard answers and the confirm step. The pages work without this script
// (mouse, then "Confirm"); it never reveals anything about the answer.
//   choice:      the keys in each choice input's data-keys (arrows, F/J or R/M)
//   confidence:  1-5, only after a choice
//   Enter:       confirm (only when a choice and a confidence are set)
//   Backspace/U: undo (clear the choice and the confidence)
(function () {
  "use strict";
  var form = document.getElementById("answer-form");
  if (!form) { return; }
  var confirmButton = document.getElementById("confirm");
  var dpr = document.getElementById("dpr");
  var sent = false;
  function checked(name) { return form.querySelector("input[name='" + name + "']:checked"); }
  function update() { confirmButton.disabled = !(checked("choice") && checked("confidence")); }
  form.addEventListener("change", function (ev) {
    if (ev.target && ev.target.name === "choice") {
      // a (changed) choice asks for the confidence again
      var c = checked("confidence");
      if (c) { c.checked = false; }
    }
    update();
  });
  form.addEventListener("reset", function () { window.setTimeout(update, 0); });
  form.addEventListener("submit", function (ev) {
    if (sent || !(checked("choice") && checked("confidence"))) { ev.preventDefault(); return; }
    if (dpr) { dpr.value = String(window.devicePixelRatio || ""); }
    sent = true;
  });
  update();
  var keys = {};
  Array.prototype.forEach.call(form.querySelectorAll("input[name='choice']"), function (input) {
    (input.getAttribute("data-keys") || "").split(" ").forEach(function (k) { if (k) { keys[k] = input; } });
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey || sent) { return; }
    var key = ev.key;
    if (keys[key]) {
      ev.preventDefault();
      if (!keys[key].checked) { keys[key].click(); }
      return;
    }
    if (key >= "1" && key <= "5") {
      ev.preventDefault();
      var radio = document.getElementById("confidence-" + key);
      if (radio && checked("choice")) { radio.click(); }
      return;
    }
    if (key === "Enter") {
      ev.preventDefault();
      if (checked("choice") && checked("confidence")) { form.requestSubmit(confirmButton); }
      return;
    }
    if (key === "Backspace" || key === "u" || key === "U") {
      ev.preventDefault();
      form.reset();  // resets synchronously (the reset event fires before, hence its deferred update)
      update();
    }
  });
})();
