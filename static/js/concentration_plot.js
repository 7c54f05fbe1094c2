/*
 * Concentration-time plot of a therapy course (mipd-web).
 *
 *   MipdPlot.render(container, data) -> Chart
 *
 * Draws into `container` (a div, emptied first) a canvas and a "Save as PNG" button, from the JSON document
 * that the therapy-course page embeds (see docs: times are hours since `t0`, concentrations in `unit`):
 * credible (or prior) bands, the MAP and population curves, measured levels, doses, the target range, a
 * "now" line and the forecast of a recommended regimen. Returns the Chart.js instance; every dataset carries
 * `mipdRole` (e.g. "map", "band90", "levels") so that callers and tests can find it.
 *
 * Needs Chart.js 4 (static/vendor/chartjs/chart.umd.min.js) loaded first. Plain ES2017, no build step; the
 * only global it defines is `window.MipdPlot`.
 *
 * Clock times are shown in the UTC offset written in `t0` (the server's local time), or in the IANA zone
 * `time_zone` when the document has one (optional; it keeps clock times right across a DST change).
 */
(function () {
  "use strict";

  var COLOURS = {
    ink: "#1d2430",
    map: "#0b5cab",
    band90: "rgba(11, 92, 171, 0.13)",
    band50: "rgba(11, 92, 171, 0.30)",
    population: "#6b7280",
    levels: "#1d2430",
    excluded: "#6b7280",
    blq: "#8a1c1c",
    doses: "#6d28d9",
    series: "rgba(106, 27, 154, 0.7)",
    target: "rgba(22, 163, 74, 0.14)",
    targetLine: "rgba(22, 163, 74, 0.55)",
    toxicity: "#b91c1c",
    now: "#7a4100",
    forecast: "#c2410c",
    forecastBand: "rgba(234, 88, 12, 0.16)",
  };
  // Non-ASCII text is written as \u escapes: the script is then read right whatever charset it is served with.
  var DASH = "\u2013";
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var ROUTES = {
    iv_infusion: "IV infusion",
    iv_bolus: "IV bolus",
    oral: "oral",
    sc: "subcutaneous",
    im: "intramuscular",
  };
  var TICK_STEPS_H = [1, 2, 3, 4, 6, 12, 24, 48, 72, 168];
  var MAX_TICKS = 10;
  var HOVER_PX = 8; // a level or dose joins the tooltip when the pointer is this close to it in x
  var DOSE_MARK_Y = 0.035; // doses sit on a hidden 0..1 axis, just above the bottom of the plot

  // ---------------------------------------------------------------------------------------------------
  // Numbers and clock times

  function isNum(value) {
    return typeof value === "number" && isFinite(value);
  }

  function fmtNum(value) {
    if (!isNum(value)) return DASH;
    var abs = Math.abs(value);
    var digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
    return value.toFixed(digits);
  }

  /** Amounts, durations and limits as written: 1000, 1, 0.5 (at most 2 decimals). */
  function fmtPlain(value) {
    return isNum(value) ? String(Number(value.toFixed(2))) : DASH;
  }

  function pad2(n) {
    return (n < 10 ? "0" : "") + n;
  }

  /** Clock-time formatter for hours since t0: {parts(h) -> {day, month, hh, mm, dateKey}, hoursOfDay0}. */
  function makeClock(t0, timeZone) {
    var t0Ms = Date.parse(t0);
    if (!isFinite(t0Ms)) throw new Error("MipdPlot: t0 is not an ISO 8601 date-time: " + t0);
    var intl = null;
    if (timeZone && typeof Intl !== "undefined") {
      try {
        intl = new Intl.DateTimeFormat("en-GB", {
          timeZone: timeZone,
          day: "numeric",
          month: "numeric",
          hour: "2-digit",
          minute: "2-digit",
          hourCycle: "h23",
        });
      } catch (err) {
        intl = null; // an unknown zone name: fall back to t0's offset
      }
    }
    var match = /([+-])(\d{2}):?(\d{2})$/.exec(t0);
    var offsetMin;
    if (match) offsetMin = (match[1] === "-" ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3]));
    else if (/Z$/i.test(t0)) offsetMin = 0;
    else offsetMin = -new Date(t0Ms).getTimezoneOffset(); // no offset written: the browser's time

    function parts(hours) {
      var ms = t0Ms + Math.round(hours * 3600000);
      if (intl) {
        var found = {};
        intl.formatToParts(new Date(ms)).forEach(function (p) {
          found[p.type] = p.value;
        });
        var month = Number(found.month) - 1;
        return {
          day: Number(found.day),
          month: MONTHS[month],
          hh: pad2(Number(found.hour) % 24),
          mm: pad2(Number(found.minute)),
          dateKey: found.day + "/" + found.month,
        };
      }
      var d = new Date(ms + offsetMin * 60000);
      return {
        day: d.getUTCDate(),
        month: MONTHS[d.getUTCMonth()],
        hh: pad2(d.getUTCHours()),
        mm: pad2(d.getUTCMinutes()),
        dateKey: d.getUTCDate() + "/" + d.getUTCMonth(),
      };
    }

    var p0 = parts(0);
    return {
      parts: parts,
      hoursOfDay0: Number(p0.hh) + Number(p0.mm) / 60,
      label: function (hours) {
        var p = parts(hours);
        return p.day + " " + p.month + " " + p.hh + ":" + p.mm;
      },
    };
  }

  /** Tick positions (hours since t0) on whole clock hours, at most MAX_TICKS of them. */
  function clockTicks(minH, maxH, hoursOfDay0) {
    var range = Math.max(maxH - minH, 1);
    var step = TICK_STEPS_H[TICK_STEPS_H.length - 1];
    for (var i = 0; i < TICK_STEPS_H.length; i++) {
      if (range / TICK_STEPS_H[i] <= MAX_TICKS) {
        step = TICK_STEPS_H[i];
        break;
      }
    }
    var align = step >= 24 ? 24 : step; // multi-day steps start at a midnight
    var first = Math.ceil((minH + hoursOfDay0) / align) * align - hoursOfDay0;
    while (first - step >= minH - 1e-9) first -= step;
    var ticks = [];
    for (var h = first; h <= maxH + 1e-9; h += step) ticks.push({ value: h });
    return { ticks: ticks, stepH: step };
  }

  // ---------------------------------------------------------------------------------------------------
  // Datasets

  function curve(times, values) {
    if (!Array.isArray(times) || !Array.isArray(values)) return [];
    var points = [];
    var n = Math.min(times.length, values.length);
    for (var i = 0; i < n; i++) {
      if (isNum(times[i])) points.push({ x: times[i], y: isNum(values[i]) ? values[i] : null });
    }
    return points;
  }

  function afterNow(points, nowH) {
    if (!isNum(nowH)) return points;
    return points.filter(function (p) {
      return p.x >= nowH - 1e-9;
    });
  }

  /** Pushes a lower (hidden) and an upper dataset filled down to it; returns the upper one or null. */
  function pushBand(datasets, opts) {
    var low = curve(opts.times, opts.low);
    var high = curve(opts.times, opts.high);
    if (!low.length || !high.length) return null;
    datasets.push({
      mipdRole: opts.role + "-low",
      mipdHidden: true,
      label: opts.label + " (lower bound)",
      data: low,
      borderWidth: 0,
      pointRadius: 0,
      pointHoverRadius: 0,
      fill: false,
      order: opts.order,
    });
    var upper = {
      mipdRole: opts.role,
      label: opts.label,
      data: high,
      borderWidth: 0,
      borderColor: opts.colour,
      backgroundColor: opts.colour,
      pointRadius: 0,
      pointHoverRadius: 0,
      pointStyle: "rect",
      fill: "-1",
      order: opts.order,
    };
    datasets.push(upper);
    return upper;
  }

  function horizontal(y, minH, maxH) {
    return [
      { x: minH, y: y },
      { x: maxH, y: y },
    ];
  }

  function xExtent(data) {
    var xs = [];
    function add(list) {
      (list || []).forEach(function (v) {
        if (isNum(v)) xs.push(v);
      });
    }
    add(data.times_h);
    if (data.forecast) add(data.forecast.times_h);
    add([data.now_h]);
    (data.series || []).forEach(function (series) {
      add(series.times_h);
    });
    (data.observations || []).forEach(function (o) {
      add([o.time_h]);
    });
    (data.doses || []).forEach(function (d) {
      add([d.time_h, isNum(d.time_h) && isNum(d.duration_h) ? d.time_h + d.duration_h : null]);
    });
    if (!xs.length) return { min: 0, max: 24 };
    var min = Math.min.apply(null, xs);
    var max = Math.max.apply(null, xs);
    if (max - min < 1) max = min + 1;
    return { min: min, max: max };
  }

  function bandKindLabel(kind, percent) {
    return kind === "prior" ? percent + " % prior band (no level yet)" : percent + " % credible band";
  }

  /** The target as the document labels it, else its range ("10-15 mg/L", ">= 400"). */
  function targetRange(target, unit) {
    if (target.label) return target.label;
    var low = isNum(target.low) ? fmtPlain(target.low) : null;
    var high = isNum(target.high) ? fmtPlain(target.high) : null;
    var range = low && high ? low + DASH + high : low ? "\u2265 " + low : high ? "\u2264 " + high : "";
    return range + (target.is_concentration ? " " + unit : "");
  }

  function targetText(target, unit) {
    return "Target: " + targetRange(target, unit);
  }

  function buildDatasets(data, unit, extent, clock) {
    var datasets = [];
    var kind = data.band_kind === "prior" ? "prior" : "credible";
    var times = data.times_h || [];
    var bands = data.bands || null;
    var has = { band90: false, band50: false };

    if (bands) {
      has.band90 = !!pushBand(datasets, {
        role: "band90",
        label: bandKindLabel(kind, 90),
        times: times,
        low: bands["0.05"],
        high: bands["0.95"],
        colour: COLOURS.band90,
        order: 5,
      });
      has.band50 = !!pushBand(datasets, {
        role: "band50",
        label: bandKindLabel(kind, 50),
        times: times,
        low: bands["0.25"],
        high: bands["0.75"],
        colour: COLOURS.band50,
        order: 4,
      });
    }

    var target = data.target || null;
    if (target && target.is_concentration && (isNum(target.low) || isNum(target.high))) {
      var text = targetText(target, unit);
      if (isNum(target.low) && isNum(target.high)) {
        datasets.push({
          mipdRole: "target-low",
          mipdHidden: true,
          mipdNoTooltip: true,
          label: text + " (lower limit)",
          data: horizontal(target.low, extent.min, extent.max),
          borderWidth: 0,
          pointRadius: 0,
          pointHoverRadius: 0,
          fill: false,
          order: 6,
        });
      }
      var edge = isNum(target.high) ? target.high : target.low;
      datasets.push({
        mipdRole: "target",
        mipdNoTooltip: true,
        label: text,
        data: horizontal(edge, extent.min, extent.max),
        borderWidth: 1,
        borderColor: COLOURS.targetLine,
        backgroundColor: COLOURS.target,
        pointRadius: 0,
        pointHoverRadius: 0,
        pointStyle: "rect",
        fill: isNum(target.low) && isNum(target.high) ? "-1" : isNum(target.high) ? "start" : "end",
        order: 6,
      });
    }
    if (target && target.is_concentration && isNum(target.toxicity_limit)) {
      datasets.push({
        mipdRole: "toxicity",
        mipdNoTooltip: true,
        label: "Toxicity limit " + fmtPlain(target.toxicity_limit) + " " + unit,
        data: horizontal(target.toxicity_limit, extent.min, extent.max),
        borderColor: COLOURS.toxicity,
        backgroundColor: COLOURS.toxicity,
        borderWidth: 1.5,
        borderDash: [8, 4],
        pointRadius: 0,
        pointHoverRadius: 0,
        pointStyle: "line",
        fill: false,
        order: 3,
      });
    }

    var population = curve(times, data.population);
    if (population.length) {
      datasets.push({
        mipdRole: "population",
        label: "Population (covariates only)",
        data: population,
        borderColor: COLOURS.population,
        backgroundColor: COLOURS.population,
        borderWidth: 1.5,
        borderDash: [6, 4],
        pointRadius: 0,
        pointHoverRadius: 3,
        pointStyle: "line",
        fill: false,
        order: 2,
      });
    }

    var map = curve(times, data.map);
    if (map.length) {
      datasets.push({
        mipdRole: "map",
        label: "Individual (MAP) curve",
        data: map,
        borderColor: COLOURS.map,
        backgroundColor: COLOURS.map,
        borderWidth: 2.5,
        pointRadius: 0,
        pointHoverRadius: 3,
        pointStyle: "line",
        fill: false,
        order: 1,
      });
    }

    var forecast = data.forecast || null;
    var hasForecast = false;
    if (forecast) {
      var fBands = forecast.bands || {};
      var fTimes = forecast.times_h || [];
      var fLow = afterNow(curve(fTimes, fBands["0.05"]), data.now_h);
      var fHigh = afterNow(curve(fTimes, fBands["0.95"]), data.now_h);
      if (fLow.length && fHigh.length) {
        datasets.push({
          mipdRole: "forecast-band-low",
          mipdHidden: true,
          label: "Forecast 90 % band (lower bound)",
          data: fLow,
          borderWidth: 0,
          pointRadius: 0,
          pointHoverRadius: 0,
          fill: false,
          order: 5,
        });
        datasets.push({
          mipdRole: "forecast-band",
          label: "Forecast 90 % band",
          data: fHigh,
          borderWidth: 0,
          borderColor: COLOURS.forecastBand,
          backgroundColor: COLOURS.forecastBand,
          pointRadius: 0,
          pointHoverRadius: 0,
          pointStyle: "rect",
          fill: "-1",
          order: 5,
        });
      }
      var median = afterNow(curve(fTimes, forecast.median), data.now_h);
      if (median.length) {
        hasForecast = true;
        datasets.push({
          mipdRole: "forecast",
          label: "Forecast" + (forecast.label ? ": " + forecast.label : "") + " (median)",
          data: median,
          borderColor: COLOURS.forecast,
          backgroundColor: COLOURS.forecast,
          borderWidth: 2.5,
          borderDash: [2, 3],
          pointRadius: 0,
          pointHoverRadius: 3,
          pointStyle: "line",
          fill: false,
          order: 1,
        });
      }
    }

    var included = [];
    var excluded = [];
    var blq = [];
    (data.observations || []).forEach(function (obs) {
      if (!isNum(obs.time_h)) return;
      var belowLloq = !!obs.below_lloq;
      var y = belowLloq && isNum(obs.lloq) ? obs.lloq : obs.value;
      if (!isNum(y)) return;
      var point = { x: obs.time_h, y: y, obs: obs };
      if (obs.excluded) excluded.push(point);
      else if (belowLloq) blq.push(point);
      else included.push(point);
    });
    var pointSets = [
      {
        role: "levels",
        points: included,
        label: "Measured levels",
        style: "circle",
        radius: 5,
        border: COLOURS.levels,
        fillColour: COLOURS.levels,
      },
      {
        role: "levels-blq",
        points: blq,
        label: "Below LLOQ (drawn at the LLOQ)",
        style: "triangle",
        rotation: 180,
        radius: 6,
        border: COLOURS.blq,
        fillColour: COLOURS.blq,
      },
      {
        role: "levels-excluded",
        points: excluded,
        label: "Excluded levels (not used in the fit)",
        style: "circle",
        radius: 5,
        border: COLOURS.excluded,
        fillColour: "rgba(255, 255, 255, 0.9)",
      },
    ];
    pointSets.forEach(function (set) {
      if (!set.points.length) return;
      datasets.push({
        mipdRole: set.role,
        mipdSparse: true,
        label: set.label,
        data: set.points,
        showLine: false,
        pointStyle: set.style,
        rotation: set.rotation || 0,
        clip: false, // a marker at the edge of the plot is drawn whole
        pointRadius: set.radius,
        pointHoverRadius: set.radius + 2,
        pointBorderWidth: 2,
        borderColor: set.border,
        backgroundColor: set.fillColour,
        pointBorderColor: set.border,
        pointBackgroundColor: set.fillColour,
        order: 0,
      });
    });

    // A monitoring device's series: small dots (thinned by the server; the fit uses every point).
    (data.series || []).forEach(function (series) {
      var points = [];
      (series.times_h || []).forEach(function (t, i) {
        if (isNum(t) && isNum(series.values[i])) points.push({ x: t, y: series.values[i] });
      });
      if (!points.length) return;
      datasets.push({
        mipdRole: "series",
        label: series.label,
        data: points,
        showLine: false,
        pointStyle: "circle",
        pointRadius: 1.5,
        pointHoverRadius: 3,
        borderColor: COLOURS.series,
        backgroundColor: COLOURS.series,
        order: 1,
      });
    });

    var doses = (data.doses || [])
      .filter(function (d) {
        return isNum(d.time_h);
      })
      .map(function (d) {
        return { x: d.time_h, y: DOSE_MARK_Y, dose: d };
      });
    if (doses.length) {
      datasets.push({
        mipdRole: "doses",
        mipdSparse: true,
        label: "Doses (amount in the tooltip)",
        data: doses,
        yAxisID: "yMarks",
        showLine: false,
        pointStyle: "triangle",
        pointRadius: 6,
        pointHoverRadius: 8,
        clip: false,
        borderColor: COLOURS.doses,
        backgroundColor: COLOURS.doses,
        order: 0,
      });
    }

    if (isNum(data.now_h)) {
      datasets.push({
        mipdRole: "now",
        mipdNoTooltip: true,
        label: "Now (" + clock.label(data.now_h) + ")",
        data: [
          { x: data.now_h, y: 0 },
          { x: data.now_h, y: 1 },
        ],
        yAxisID: "yMarks",
        borderColor: COLOURS.now,
        backgroundColor: COLOURS.now,
        borderWidth: 1.5,
        borderDash: [4, 4],
        pointRadius: 0,
        pointHoverRadius: 0,
        pointStyle: "line",
        fill: false,
        order: 0,
      });
    }

    return {
      datasets: datasets,
      summary: {
        levels: included.length + blq.length + excluded.length,
        excluded: excluded.length,
        blq: blq.length,
        doses: doses.length,
        map: map.length > 0,
        population: population.length > 0,
        band90: has.band90,
        band50: has.band50,
        kind: kind,
        forecast: hasForecast ? forecast.label || "a forecast" : null,
      },
    };
  }

  // ---------------------------------------------------------------------------------------------------
  // Accessibility, legend, tooltip

  function ariaSummary(summary, target, unit) {
    var parts = [];
    var levels = summary.levels + (summary.levels === 1 ? " level" : " levels");
    var notes = [];
    if (summary.excluded) notes.push(summary.excluded + " excluded");
    if (summary.blq) notes.push(summary.blq + " below the LLOQ");
    parts.push(levels + (notes.length ? " (" + notes.join(", ") + ")" : ""));
    parts.push(summary.doses + (summary.doses === 1 ? " dose" : " doses"));
    var bandList = [];
    if (summary.band50) bandList.push("50 %");
    if (summary.band90) bandList.push("90 %");
    var bandsText = bandList.length
      ? " with " + bandList.join(" and ") + (summary.kind === "prior" ? " prior bands" : " credible bands")
      : "";
    // The bands belong to the MAP curve once there is one, else to the population (a-priori) curve.
    if (summary.map) parts.push("MAP curve" + bandsText);
    else parts.push("no MAP curve yet");
    if (summary.population) parts.push("population curve" + (summary.map ? "" : bandsText));
    else if (!summary.map && bandsText) parts.push(bandsText.replace(" with ", ""));
    if (target) {
      parts.push("target " + targetRange(target, unit) + (target.is_concentration ? "" : " (not drawn)"));
    }
    if (summary.forecast) parts.push("forecast for " + summary.forecast);
    return "Concentration-time plot: " + parts.join(", ") + ". Concentrations in " + unit + ".";
  }

  var ROLE_ORDER = [
    "map",
    "band50",
    "band90",
    "population",
    "levels",
    "levels-blq",
    "levels-excluded",
    "series",
    "doses",
    "target",
    "toxicity",
    "now",
    "forecast",
    "forecast-band",
  ];

  function roleRank(dataset) {
    var rank = ROLE_ORDER.indexOf(dataset && dataset.mipdRole);
    return rank < 0 ? ROLE_ORDER.length : rank;
  }

  /** Legend: every series but the hidden lower bounds, in ROLE_ORDER, then a text-only target note. */
  function legendLabels(note) {
    return function (chart) {
      var datasets = chart.data.datasets;
      var items = Chart.defaults.plugins.legend.labels
        .generateLabels(chart)
        .filter(function (item) {
          return !datasets[item.datasetIndex].mipdHidden;
        })
        .sort(function (a, b) {
          return roleRank(datasets[a.datasetIndex]) - roleRank(datasets[b.datasetIndex]);
        });
      if (note) {
        items.push({
          text: note,
          fillStyle: "rgba(0, 0, 0, 0)",
          strokeStyle: "rgba(0, 0, 0, 0)",
          lineWidth: 0,
          pointStyle: "rect",
          hidden: false,
          fontColor: COLOURS.ink,
        });
      }
      return items;
    };
  }

  function legendClick(event, item, legend) {
    if (typeof item.datasetIndex !== "number") return; // the target note is text only
    Chart.defaults.plugins.legend.onClick.call(this, event, item, legend);
  }

  /**
   * Tooltip mode: at the pointer's time, every curve's nearest point, plus any level or dose within
   * HOVER_PX. (Chart.js's "index" mode would pair unrelated points: the series have different time grids.)
   */
  function timeMode(chart, event, options, useFinalPosition) {
    var position = Chart.helpers.getRelativePosition(event, chart);
    var area = chart.chartArea;
    if (
      !area ||
      position.x < area.left ||
      position.x > area.right ||
      position.y < area.top ||
      position.y > area.bottom
    ) {
      return [];
    }
    var items = [];
    chart.data.datasets.forEach(function (dataset, datasetIndex) {
      if (dataset.mipdNoTooltip || dataset.mipdHidden || !chart.isDatasetVisible(datasetIndex)) return;
      var elements = chart.getDatasetMeta(datasetIndex).data;
      if (!elements.length) return;
      var best = -1;
      var bestDx = Infinity;
      for (var i = 0; i < elements.length; i++) {
        var x = elements[i].getProps(["x"], useFinalPosition).x;
        var dx = Math.abs(x - position.x);
        if (dx < bestDx) {
          bestDx = dx;
          best = i;
        }
      }
      var first = elements[0].getProps(["x"], useFinalPosition).x;
      var last = elements[elements.length - 1].getProps(["x"], useFinalPosition).x;
      var inside = position.x >= first - HOVER_PX && position.x <= last + HOVER_PX;
      if (dataset.mipdSparse ? bestDx <= HOVER_PX : inside) {
        var raw = dataset.data[best];
        if (!raw || !isNum(raw.y)) return;
        items.push({ element: elements[best], datasetIndex: datasetIndex, index: best });
      }
    });
    return items;
  }

  function doseText(dose, clock) {
    var route = ROUTES[dose.route] || dose.route || "";
    var text = "Dose " + clock.label(dose.time_h) + ": " + fmtPlain(dose.amount_mg) + " mg";
    if (route) text += " " + route;
    if (isNum(dose.duration_h) && dose.duration_h > 0) text += " over " + fmtPlain(dose.duration_h) + " h";
    return text;
  }

  function observationText(obs, unit, clock) {
    var name = "Level (" + (obs.label || clock.label(obs.time_h)) + ")";
    var value;
    if (obs.below_lloq) {
      value = "< " + (isNum(obs.lloq) ? fmtNum(obs.lloq) : fmtNum(obs.value)) + " " + unit + " (below LLOQ)";
    } else {
      value = fmtNum(obs.value) + " " + unit;
    }
    return name + ": " + value + (obs.excluded ? " (excluded)" : "");
  }

  function tooltipLabel(unit, clock) {
    return function (context) {
      var dataset = context.dataset;
      var raw = context.raw || {};
      if (raw.dose) return doseText(raw.dose, clock);
      if (raw.obs) return observationText(raw.obs, unit, clock);
      if (/^band|^forecast-band$/.test(dataset.mipdRole)) {
        var lower = context.chart.data.datasets[context.datasetIndex - 1];
        var low = lower && lower.data[context.dataIndex] ? lower.data[context.dataIndex].y : null;
        return dataset.label + ": " + fmtNum(low) + DASH + fmtNum(raw.y) + " " + unit;
      }
      return dataset.label + ": " + fmtNum(raw.y) + " " + unit;
    };
  }

  // ---------------------------------------------------------------------------------------------------
  // Plugins local to this chart

  /** Writes "excluded" beside every excluded level. */
  var excludedLabels = {
    id: "mipdExcludedLabels",
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx;
      chart.data.datasets.forEach(function (dataset, index) {
        if (dataset.mipdRole !== "levels-excluded" || !chart.isDatasetVisible(index)) return;
        ctx.save();
        ctx.font = "12px system-ui, sans-serif";
        ctx.fillStyle = COLOURS.excluded;
        ctx.textBaseline = "middle";
        chart.getDatasetMeta(index).data.forEach(function (element) {
          ctx.fillText("excluded", element.x + 9, element.y);
        });
        ctx.restore();
      });
    },
  };

  // ---------------------------------------------------------------------------------------------------
  // Save as PNG

  function savePng(canvas) {
    var copy = document.createElement("canvas");
    copy.width = canvas.width;
    copy.height = canvas.height;
    var ctx = copy.getContext("2d");
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, copy.width, copy.height);
    ctx.drawImage(canvas, 0, 0);
    var link = document.createElement("a");
    link.href = copy.toDataURL("image/png");
    link.download = "concentration-plot.png";
    document.body.appendChild(link);
    link.click();
    link.remove();
  }

  // ---------------------------------------------------------------------------------------------------
  // Entry point

  function render(container, data) {
    if (typeof Chart === "undefined") {
      throw new Error("MipdPlot: Chart.js is not loaded (include vendor/chartjs/chart.umd.min.js first)");
    }
    if (!container || !data) throw new Error("MipdPlot.render(container, data): both are required");
    if (!Chart.Interaction.modes.mipdTime) Chart.Interaction.modes.mipdTime = timeMode;

    container.querySelectorAll("canvas").forEach(function (old) {
      var chart = Chart.getChart(old);
      if (chart) chart.destroy();
    });
    container.replaceChildren();
    container.classList.add("mipd-plot");

    var unit = data.unit || "";
    var clock = makeClock(data.t0, data.time_zone);
    var extent = xExtent(data);
    var built = buildDatasets(data, unit, extent, clock);
    var target = data.target || null;
    var legendNote = target && !target.is_concentration ? targetText(target, unit) + " (not drawn)" : null;

    var wrap = document.createElement("div");
    wrap.className = "mipd-plot-canvas";
    wrap.style.position = "relative"; // Chart.js sizes the canvas from a positioned parent
    var canvas = document.createElement("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", ariaSummary(built.summary, target, unit));
    canvas.textContent = canvas.getAttribute("aria-label"); // fallback content
    wrap.appendChild(canvas);
    container.appendChild(wrap);

    var actions = document.createElement("div");
    actions.className = "mipd-plot-actions";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "mipd-plot-save";
    button.textContent = "Save as PNG";
    button.addEventListener("click", function () {
      savePng(canvas);
    });
    actions.appendChild(button);
    container.appendChild(actions);

    var stepH = 1;
    var t0Label = clock.label(0);
    canvas.tabIndex = 0; // keyboard users step through the curve with the arrow keys
    var chart = new Chart(canvas, {
      type: "line",
      data: { datasets: built.datasets },
      plugins: [excludedLabels],
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        spanGaps: false,
        interaction: { mode: "mipdTime", intersect: false },
        scales: {
          x: {
            type: "linear",
            min: extent.min,
            max: extent.max,
            title: { display: true, text: "Time (clock time; t = 0 at " + t0Label + ")" },
            afterBuildTicks: function (axis) {
              var built = clockTicks(axis.min, axis.max, clock.hoursOfDay0);
              stepH = built.stepH;
              axis.ticks = built.ticks;
            },
            ticks: {
              autoSkip: false,
              maxRotation: 0,
              callback: function (value, index, ticks) {
                var p = clock.parts(value);
                var date = p.day + " " + p.month;
                if (stepH >= 24) return date;
                var time = p.hh + ":" + p.mm;
                var previous = index > 0 ? clock.parts(ticks[index - 1].value) : null;
                return !previous || previous.dateKey !== p.dateKey ? [time, date] : time;
              },
            },
          },
          y: {
            type: "linear",
            beginAtZero: true,
            title: { display: true, text: "Concentration (" + unit + ")" },
          },
          yMarks: { type: "linear", display: false, min: 0, max: 1 },
        },
        plugins: {
          legend: {
            position: "bottom",
            labels: { usePointStyle: true, generateLabels: legendLabels(legendNote) },
            onClick: legendClick,
          },
          tooltip: {
            mode: "mipdTime",
            intersect: false,
            itemSort: function (a, b) {
              return roleRank(a.dataset) - roleRank(b.dataset);
            },
            callbacks: {
              title: function (items) {
                if (!items.length) return "";
                var x = items[0].parsed.x;
                return clock.label(x) + " (t = " + fmtNum(x) + " h)";
              },
              label: tooltipLabel(unit, clock),
            },
          },
        },
      },
    });
    canvas.addEventListener("keydown", function (event) {
      keyboardStep(chart, event);
    });
    return chart;
  }

  /** Arrow keys move the tooltip along the main curve (MAP, else population); Home/End jump; Escape hides. */
  function keyboardStep(chart, event) {
    var roles = ["map", "population", "forecast"];
    var datasetIndex = -1;
    for (var r = 0; r < roles.length && datasetIndex < 0; r++) {
      datasetIndex = chart.data.datasets.findIndex(function (d) {
        return d.mipdRole === roles[r] && d.data && d.data.length;
      });
    }
    if (datasetIndex < 0) return;
    var points = chart.data.datasets[datasetIndex].data;
    var active = chart.tooltip.getActiveElements();
    var index = active.length ? active[0].index : -1;
    var step = Math.max(1, Math.round(points.length / 48)); // about one step per hour on a 2-day plot
    if (event.key === "ArrowRight") index = Math.min(points.length - 1, index + step);
    else if (event.key === "ArrowLeft") index = Math.max(0, (index < 0 ? points.length : index) - step);
    else if (event.key === "Home") index = 0;
    else if (event.key === "End") index = points.length - 1;
    else if (event.key === "Escape") {
      chart.tooltip.setActiveElements([], { x: 0, y: 0 });
      chart.update();
      return;
    } else return;
    event.preventDefault();
    var meta = chart.getDatasetMeta(datasetIndex);
    var element = meta.data[index];
    if (!element) return;
    chart.tooltip.setActiveElements([{ datasetIndex: datasetIndex, index: index }], { x: element.x, y: element.y });
    chart.update();
  }

  window.MipdPlot = { render: render };
})();
