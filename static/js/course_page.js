/* Course page: draws the plot, and follows the latest Bayesian update until it finishes, then swaps in the
 * new results without a manual reload. Plain ES2017; needs MipdPlot (concentration_plot.js). */
(function () {
  "use strict";
  var POLL_MS = 1500;

  function drawPlot() {
    var data = document.getElementById("plot-data");
    var container = document.getElementById("concentration-plot");
    if (data && container && window.MipdPlot) {
      window.MipdPlot.render(container, JSON.parse(data.textContent));
    }
  }

  function follow() {
    var box = document.getElementById("update-status");
    if (!box) return;
    var state = document.getElementById("update-state");
    var shown = box.dataset.shownUpdate;
    function poll() {
      fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (status) {
          if (!status.update) return;
          var text = status.label + ": " + status.trigger + (status.error ? " \u2014 " + status.error : "");
          state.textContent = text;
          state.className = "update-" + status.status;
          if (!status.finished) {
            window.setTimeout(poll, POLL_MS);
          } else if (String(status.update) !== shown) {
            shown = String(status.update);
            box.dataset.shownUpdate = shown;
            return fetch(box.dataset.resultsUrl, { credentials: "same-origin" })
              .then(function (response) { return response.text(); })
              .then(function (html) {
                document.getElementById("course-results").innerHTML = html;
                drawPlot();
              });
          }
        })
        .catch(function () { window.setTimeout(poll, POLL_MS * 4); });
    }
    poll();
  }

  /* The dose form: a bolus or tablet has no duration; an infusion's duration follows the dose under the
   * drug's rate limit (the server checks the same rule). A duration typed by hand is left alone. */
  function doseForm() {
    var box = document.getElementById("dose-entry");
    var form = document.getElementById("dose-form");
    if (!box || !form) return;
    var route = form.elements.route, amount = form.elements.amount_mg, duration = form.elements.infusion_duration_h;
    if (!route || !amount || !duration) return;
    var maxRate = parseFloat(box.dataset.maxRateMgPerH), usual = parseFloat(box.dataset.usualDurationH);
    var typed = false;
    duration.addEventListener("input", function () { typed = true; });
    function update() {
      var infusion = route.value === "iv_infusion";
      duration.disabled = !infusion;
      if (!infusion) { duration.value = ""; return; }
      if (typed) return;
      var dose = parseFloat(amount.value), hours = isNaN(usual) ? NaN : usual;
      if (!isNaN(dose) && !isNaN(maxRate) && maxRate > 0) {
        var shortest = Math.ceil((dose / maxRate) * 12 - 1e-9) / 12;
        hours = isNaN(hours) ? shortest : Math.max(hours, shortest);
      }
      if (!isNaN(hours)) duration.value = String(Math.round(hours * 100) / 100);
    }
    route.addEventListener("change", update);
    amount.addEventListener("input", update);
    update();
  }

  // "Print this page": the print stylesheet (mipd.css, @media print) leaves the record and the order.
  // Delegated, because the results panel is swapped in after each update.
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print-page]")) window.print();
  });

  document.addEventListener("DOMContentLoaded", function () {
    drawPlot();
    follow();
    doseForm();
  });
})();
