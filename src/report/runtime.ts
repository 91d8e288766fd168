/**
 * The page's own script (plain browser JavaScript, inlined after Chart.js and chartjs-chart-matrix): reads the
 * embedded chart specs (charts.ts) and draws them. Kept free of template literals so it can live in one here.
 */
export const RUNTIME = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('wina-report-data').textContent);
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  Chart.defaults.color = '#333';

  function fmt(v) {
    if (v === null || v === undefined) return '–';
    if (!isFinite(v)) return String(v);
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
    return String(Number(v.toPrecision(4)));
  }

  // Vertical whiskers of ± stderr (Chart.js has no error bars of its own).
  var errorBars = {
    id: 'winaErrorBars',
    afterDatasetsDraw: function (chart, _args, options) {
      if (!options || !options.enabled) return;
      var ctx = chart.ctx;
      var y = chart.scales.y;
      var area = chart.chartArea;
      chart.data.datasets.forEach(function (ds, i) {
        if (!chart.isDatasetVisible(i)) return;
        var meta = chart.getDatasetMeta(i);
        ctx.save();
        ctx.strokeStyle = ds.borderColor;
        ctx.lineWidth = 1.2;
        meta.data.forEach(function (el, j) {
          var raw = ds.data[j];
          if (!raw || raw.stderr === null || raw.stderr === undefined || raw.y === null) return;
          var top = Math.max(area.top, y.getPixelForValue(raw.y + raw.stderr));
          var bottom = Math.min(area.bottom, y.getPixelForValue(raw.y - raw.stderr));
          if (!isFinite(top) || !isFinite(bottom)) return;
          ctx.beginPath();
          ctx.moveTo(el.x, top);
          ctx.lineTo(el.x, bottom);
          ctx.moveTo(el.x - 4, top);
          ctx.lineTo(el.x + 4, top);
          ctx.moveTo(el.x - 4, bottom);
          ctx.lineTo(el.x + 4, bottom);
          ctx.stroke();
        });
        ctx.restore();
      });
    },
  };

  // Light to dark blue (ColorBrewer Blues) for heatmap cells.
  var BLUES = [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
  function heatColor(t) {
    t = Math.max(0, Math.min(1, t)) * (BLUES.length - 1);
    var i = Math.min(BLUES.length - 2, Math.floor(t));
    var f = t - i;
    var c = BLUES[i].map(function (a, k) { return Math.round(a + (BLUES[i + 1][k] - a) * f); });
    return 'rgb(' + c.join(',') + ')';
  }

  // The value written in each heatmap cell, white on dark cells.
  var cellLabels = {
    id: 'winaCellLabels',
    afterDatasetsDraw: function (chart, _args, options) {
      if (!options || !options.enabled) return;
      var ctx = chart.ctx;
      var meta = chart.getDatasetMeta(0);
      var ds = chart.data.datasets[0];
      ctx.save();
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.font = '12px ' + Chart.defaults.font.family;
      meta.data.forEach(function (el, j) {
        var raw = ds.data[j];
        if (!raw || raw.v === null) return;
        var c = el.getCenterPoint();
        var t = (raw.v - options.min) / (options.max - options.min || 1);
        ctx.fillStyle = t > 0.55 ? '#fff' : '#222';
        ctx.fillText(raw.v.toFixed(options.digits), c.x, c.y);
      });
      ctx.restore();
    },
  };

  // Log axes get round ticks spaced evenly (Chart.js's own crowd together on narrow ranges).
  function logTicks(scale) {
    var min = scale.min;
    var max = scale.max;
    if (!(min > 0) || !(max > min)) return;
    var span = Math.log10(max / min);
    var mantissas = span > 2 ? [1] : span > 0.8 ? [1, 2, 5] : [1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9];
    var values = [];
    for (var k = Math.floor(Math.log10(min)); k <= Math.ceil(Math.log10(max)); k++) {
      mantissas.forEach(function (m) {
        var v = m * Math.pow(10, k);
        if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) values.push(v);
      });
    }
    var kept = [];
    values.forEach(function (v) {
      if (!kept.length || Math.log10(v / kept[kept.length - 1]) >= span / 8) kept.push(v);
    });
    if (kept.length >= 2) scale.ticks = kept.map(function (v) { return { value: v }; });
  }

  function logLabel(value) {
    return value >= 1e-3 && value < 1e5 ? String(Number(value.toPrecision(3))) : value.toExponential(0);
  }

  function axis(a, extra) {
    var out = {
      type: a.log ? 'logarithmic' : 'linear',
      title: { display: true, text: a.label },
      grid: { color: '#e6e6e6' },
    };
    if (a.log) {
      out.afterBuildTicks = logTicks;
      out.ticks = { callback: logLabel, maxRotation: 0 };
    }
    if (a.min !== undefined && a.min !== null) out.min = a.min;
    if (a.max !== undefined && a.max !== null) out.max = a.max;
    return Object.assign(out, extra || {});
  }

  function pointData(p, key, defaultKey) {
    var x = key === defaultKey ? p.x : p.alt && p.alt[key];
    return { x: x, y: p.y, stderr: p.stderr, note: p.note };
  }

  function tooltipLabel(item) {
    var raw = item.raw || {};
    var s = item.dataset.label + ': ' + fmt(raw.x) + ', ' + fmt(raw.y);
    if (raw.stderr !== null && raw.stderr !== undefined) s += ' ± ' + fmt(raw.stderr);
    if (raw.note) s += ' (' + raw.note + ')';
    return s;
  }

  // The y range of a chart with error bars includes the bars.
  function errorRange(spec) {
    var lo = Infinity;
    var hi = -Infinity;
    spec.series.forEach(function (s) {
      s.points.forEach(function (p) {
        if (p.y === null) return;
        var se = p.stderr || 0;
        lo = Math.min(lo, p.y - se);
        hi = Math.max(hi, p.y + se);
      });
    });
    return isFinite(lo) && isFinite(hi) ? { suggestedMin: lo, suggestedMax: hi } : {};
  }

  function xyConfig(spec) {
    var defaultKey = spec.xChoices ? spec.xChoices[0].key : 'x';
    return {
      type: 'scatter',
      data: {
        datasets: spec.series.map(function (s) {
          return {
            label: s.label,
            data: s.points.map(function (p) { return pointData(p, defaultKey, defaultKey); }),
            borderColor: s.color,
            backgroundColor: s.color,
            showLine: s.line !== false,
            borderDash: s.dashed ? [6, 4] : [],
            borderWidth: s.stepped ? 1.5 : 2,
            stepped: s.stepped ? 'middle' : false,
            pointStyle: s.marker || 'circle',
            pointRadius: s.pointRadius === undefined ? 3 : s.pointRadius,
            pointHitRadius: 6,
            pointHoverRadius: (s.pointRadius === undefined ? 3 : s.pointRadius) + 2,
            spanGaps: true,
          };
        }),
      },
      options: {
        scales: { x: axis(spec.x), y: axis(spec.y, spec.errorBars ? errorRange(spec) : null) },
        plugins: {
          legend: { position: 'bottom', labels: { boxWidth: 14, usePointStyle: true } },
          tooltip: { callbacks: { label: tooltipLabel } },
          winaErrorBars: { enabled: Boolean(spec.errorBars) },
        },
      },
      plugins: [errorBars],
    };
  }

  function barConfig(spec) {
    return {
      type: 'bar',
      data: {
        labels: spec.categories,
        datasets: spec.series.map(function (s) {
          return {
            label: s.label,
            data: s.points.map(function (p) { return p.y; }),
            backgroundColor: s.color,
            borderColor: s.color,
          };
        }),
      },
      options: {
        scales: { x: { type: 'category', title: { display: true, text: spec.x.label } }, y: axis(spec.y) },
        plugins: { legend: { position: 'bottom', display: spec.series.length > 1 } },
      },
    };
  }

  function heatmapConfig(spec) {
    var h = spec.heatmap;
    var cells = [];
    h.yLabels.forEach(function (yl, i) {
      h.xLabels.forEach(function (xl, j) {
        var v = h.values[i] ? h.values[i][j] : null;
        cells.push({ x: xl, y: yl, v: v === undefined ? null : v });
      });
    });
    var span = h.max - h.min || 1;
    return {
      type: 'matrix',
      data: {
        datasets: [
          {
            label: spec.title,
            data: cells,
            backgroundColor: function (c) {
              var raw = c.raw;
              return !raw || raw.v === null ? '#fff' : heatColor((raw.v - h.min) / span);
            },
            borderColor: '#fff',
            borderWidth: 1,
            width: function (c) { var a = c.chart.chartArea; return a ? a.width / h.xLabels.length - 1 : 0; },
            height: function (c) { var a = c.chart.chartArea; return a ? a.height / h.yLabels.length - 1 : 0; },
          },
        ],
      },
      options: {
        scales: {
          x: { type: 'category', labels: h.xLabels, offset: true, grid: { display: false },
               title: { display: true, text: spec.x.label } },
          y: { type: 'category', labels: h.yLabels, offset: true, reverse: false, grid: { display: false },
               title: { display: true, text: spec.y.label } },
        },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: function () { return ''; },
              label: function (item) {
                var raw = item.raw;
                return raw.y + ', ' + raw.x + ': ' + (raw.v === null ? '–' : raw.v.toFixed(h.digits));
              },
            },
          },
          winaCellLabels: { enabled: true, min: h.min, max: h.max, digits: h.digits },
        },
      },
      plugins: [cellLabels],
    };
  }

  var charts = {};
  data.sections.forEach(function (section) {
    section.charts.forEach(function (spec) {
      var canvas = document.getElementById(spec.id);
      var config = spec.kind === 'heatmap' ? heatmapConfig(spec) : spec.kind === 'bar' ? barConfig(spec) : xyConfig(spec);
      charts[spec.id] = { spec: spec, chart: new Chart(canvas, config) };
    });
  });

  // A section's x-axis selector redraws its charts against another x carried by the points.
  document.querySelectorAll('select[data-x-choice]').forEach(function (select) {
    select.addEventListener('change', function () {
      var key = select.value;
      var ids = select.getAttribute('data-charts').split(' ');
      ids.forEach(function (id) {
        var entry = charts[id];
        if (!entry || !entry.spec.xChoices) return;
        var choice = entry.spec.xChoices.filter(function (c) { return c.key === key; })[0];
        if (!choice) return;
        var defaultKey = entry.spec.xChoices[0].key;
        entry.chart.data.datasets.forEach(function (ds, i) {
          ds.data = entry.spec.series[i].points.map(function (p) { return pointData(p, key, defaultKey); });
        });
        entry.chart.options.scales.x.title.text = choice.label;
        entry.chart.update();
      });
    });
  });

  window.winaReport = { data: data, charts: Object.keys(charts).length };
})();
`;
