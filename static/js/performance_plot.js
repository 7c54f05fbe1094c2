/*
 * Plots of the model performance page (mipd-web): bias and coverage per subgroup, and the PIT histogram.
 *
 * Reads the JSON the page embeds (#performance-data): groups[] with mean_relative_error_pct, coverage_50 and
 * coverage_90 (each {value, low, high}) and pit_counts (10 bins). Needs Chart.js 4
 * (static/vendor/chartjs/chart.umd.min.js) loaded first. Plain ES2017, no build step, no globals.
 */
(function () {
  "use strict";

  var source = document.getElementById("performance-data");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  // "Renal function: 30-59 mL/min (n=96)" on two lines (dimension, then band): long labels would otherwise
  // be cut at the plot's left edge.
  var labels = data.groups.map(function (g) {
    var parts = g.label.split(": ");
    var last = parts.pop() + " (n=" + g.n + ")";
    return parts.length ? [parts.join(": ") + ":", last] : last;
  });

  function interval(e, scale) {
    return e.low === null ? null : [e.low * scale, e.high * scale];
  }
  function point(e, scale) {
    return e.value === null ? null : e.value * scale;
  }
  var height = Math.max(220, 36 * labels.length + 60);

  // Dashed vertical lines at given x values (the nominal coverages): drawn over the bars, under the legend.
  function nominalLines(values) {
    return {
      id: "nominalLines",
      afterDatasetsDraw: function (chart) {
        var x = chart.scales.x, area = chart.chartArea, ctx = chart.ctx;
        ctx.save();
        ctx.setLineDash([6, 4]);
        ctx.lineWidth = 1.5;
        ctx.strokeStyle = "#374151";
        values.forEach(function (value) {
          var at = x.getPixelForValue(value);
          ctx.beginPath();
          ctx.moveTo(at, area.top);
          ctx.lineTo(at, area.bottom);
          ctx.stroke();
        });
        ctx.restore();
      },
    };
  }
  ["bias-plot", "coverage-plot"].forEach(function (id) {
    document.getElementById(id).parentNode.style.height = height + "px";
  });
  var common = { responsive: true, maintainAspectRatio: false, animation: false };

  new Chart(document.getElementById("bias-plot"), {
    data: {
      labels: labels,
      datasets: [
        { type: "bar", label: "95 % interval", data: data.groups.map(function (g) {
          return interval(g.mean_relative_error_pct, 1); }), backgroundColor: "rgba(11, 92, 171, 0.25)" },
        { type: "scatter", label: "mean relative error (%)", data: data.groups.map(function (g) {
          return point(g.mean_relative_error_pct, 1); }), backgroundColor: "#0b5cab", pointRadius: 4 },
      ],
    },
    options: Object.assign({}, common, { indexAxis: "y", scales: {
      x: { title: { display: true, text: "observed vs predicted median (%), 0 = unbiased" } } } }),
    plugins: [nominalLines([0])],
  });

  new Chart(document.getElementById("coverage-plot"), {
    data: {
      labels: labels,
      datasets: [
        { type: "bar", label: "50 % interval coverage (95 % CI)", data: data.groups.map(function (g) {
          return interval(g.coverage_50, 100); }), backgroundColor: "rgba(11, 92, 171, 0.35)" },
        { type: "bar", label: "90 % interval coverage (95 % CI)", data: data.groups.map(function (g) {
          return interval(g.coverage_90, 100); }), backgroundColor: "rgba(194, 65, 12, 0.35)" },
      ],
    },
    options: Object.assign({}, common, { indexAxis: "y", scales: { x: { min: 0, max: 100,
      title: { display: true, text: "levels inside the prediction interval (%): nominal 50 and 90" } } } }),
    plugins: [nominalLines([50, 90])],
  });

  var total = data.pit_counts.reduce(function (a, b) { return a + b; }, 0) || 1;
  new Chart(document.getElementById("pit-plot"), {
    data: {
      labels: data.pit_counts.map(function (_, i) { return (i / 10).toFixed(1) + "\u2013" + ((i + 1) / 10).toFixed(1); }),
      datasets: [
        { type: "bar", label: "levels in the bin (%)", data: data.pit_counts.map(function (c) {
          return (100 * c) / total; }), backgroundColor: "rgba(11, 92, 171, 0.6)" },
        { type: "line", label: "calibrated (10 %)", data: data.pit_counts.map(function () { return 10; }),
          borderColor: "#16a34a", borderDash: [6, 4], pointRadius: 0, fill: false },
      ],
    },
    options: Object.assign({}, common, { scales: { y: { min: 0, title: { display: true, text: "% of levels" } },
      x: { title: { display: true, text: "PIT (quantile of the level in its predictive distribution)" } } } }),
  });
})();
