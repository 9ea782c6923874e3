// Dashboard actions: ask before deleting or revoking, and on the cases page tick every
// case of the page at once and say what is selected. Everything also works without it.
(function () {
  "use strict";
  document.addEventListener("submit", function (e) {
    var b = e.submitter;
    if (b && b.dataset.confirm && !window.confirm(b.dataset.confirm)) {
      e.preventDefault();
    }
  });
  var form = document.getElementById("bulk-form");
  if (!form) {
    return;
  }
  var page = document.getElementById("select-page");
  var all = document.getElementById("all-matching");
  var said = document.getElementById("selected-count");
  function boxes() {
    return Array.prototype.slice.call(form.querySelectorAll("input.case-check"));
  }
  function update() {
    var ticked = boxes().filter(function (b) { return b.checked; }).length;
    if (all.checked) {
      said.textContent = "every case the filter finds is selected";
    } else if (ticked === 0) {
      said.textContent = "or tick cases below";
    } else {
      said.textContent = ticked + (ticked === 1 ? " case ticked" : " cases ticked");
    }
    if (page) {
      page.checked = ticked > 0 && ticked === boxes().length;
      page.indeterminate = ticked > 0 && ticked < boxes().length;
    }
    form.classList.toggle("has-selection", all.checked || ticked > 0);
  }
  form.addEventListener("change", function (e) {
    if (e.target === page) {
      boxes().forEach(function (b) { b.checked = page.checked; });
    }
    update();
  });
  update();
})();
