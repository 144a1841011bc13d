/* One experiment: follows its status and partial report, draws a metric against the swept
 * value or load factor with its confidence band, the objective's bound and the capacity.
 *
 * `document.body.dataset.state` is `waiting` while it runs, then `succeeded`,
 * `failed` or `cancelled`; `#chart figure` carries `data-points` once drawn.
 */
"use strict";

(function () {
  const AF = window.AsyncFlow;
  const config = AF.pageConfig();
  const url = "/api/v1/experiments/" + encodeURIComponent(config.experimentId);
  const badge = document.getElementById("experiment-status");
  const progress = document.getElementById("experiment-progress");
  const facts = document.getElementById("experiment-facts");
  const errorBox = document.getElementById("experiment-error");
  const answerBox = document.getElementById("search-answer");
  const cancelButton = document.getElementById("cancel");
  const metricSelect = document.getElementById("metric");
  const chart = document.getElementById("chart");
  const tableBody = document.querySelector("#points-table tbody");
  const plotLink = document.getElementById("plot-link");
  let last = null;
  let plot = null;

  document.body.dataset.state = "waiting";

  function label(point, report) {
    if (report.search) return "factor " + AF.number(point.factor, 4);
    const parts = Object.entries(point.values).map(([path, value]) => path + " = " + value);
    return parts.length ? parts.join(", ") : "all replications";
  }

  function xOf(point, report) {
    if (report.search) return point.factor;
    const values = Object.values(point.values);
    return values.length && typeof values[0] === "number" ? values[0] : null;
  }

  function showFacts(view) {
    facts.replaceChildren();
    const list = [
      ["kind", view.kind],
      ["replications", view.replications_done + " / " + view.replications_planned],
      ["seed", String(view.seed)],
      ["created", AF.clock(view.created_at)],
      ["finished", AF.clock(view.finished_at)],
    ];
    if (view.report) list.push(["confidence", AF.percent(view.report.confidence)]);
    for (const [name, value] of list) {
      facts.append(AF.el("div", {}, [AF.el("dt", { text: name }), AF.el("dd", { text: value })]));
    }
  }

  function showTable(report, metric) {
    tableBody.replaceChildren();
    for (const point of report.points) {
      const s = point.summary[metric] || {};
      const cells = [
        label(point, report),
        point.replications.length + " / " + point.planned,
        point.verdict || (point.precise === false ? "not precise" : point.error || "–"),
        AF.number(s.mean, 5), AF.number(s.low, 5), AF.number(s.high, 5),
        AF.number(s.standard_error, 5),
      ];
      tableBody.append(AF.el("tr", {}, cells.map((text) => AF.el("td", { text: String(text) }))));
    }
  }

  /* A uPlot plugin drawing horizontal or vertical reference lines. */
  function guides(report, metric) {
    const search = report.search;
    return {
      hooks: {
        draw: [function (u) {
          if (!search) return;
          const ctx = u.ctx;
          ctx.save();
          ctx.lineWidth = 1.5 * devicePixelRatio;
          if (search.objective.metric === metric) {
            const y = u.valToPos(search.objective.at_most, "y", true);
            ctx.strokeStyle = "#d62728";
            ctx.setLineDash([6, 4]);
            ctx.beginPath();
            ctx.moveTo(u.bbox.left, y);
            ctx.lineTo(u.bbox.left + u.bbox.width, y);
            ctx.stroke();
          }
          if (search.capacity !== null) {
            const x = u.valToPos(search.capacity, "x", true);
            ctx.strokeStyle = "#59a14f";
            ctx.setLineDash([]);
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
          }
          ctx.restore();
        }],
      },
    };
  }

  function drawChart(report, metric) {
    const rows = report.points
      .map((p) => [xOf(p, report), p.summary[metric] || {}])
      .filter(([x, s]) => x !== null && s.mean !== null && s.mean !== undefined)
      .sort((a, b) => a[0] - b[0]);
    chart.replaceChildren();
    const figure = AF.el("figure", {});
    figure.dataset.chart = "experiment";
    figure.dataset.points = String(rows.length);
    chart.append(figure);
    if (plot) plot.destroy();
    plot = null;
    if (!rows.length) {
      figure.append(AF.el("p", { text: "No point has this metric yet (a single point, or nothing finished)." }));
      return;
    }
    const x = rows.map((r) => r[0]);
    const mean = rows.map((r) => r[1].mean);
    const low = rows.map((r) => (r[1].low === null ? r[1].mean : r[1].low));
    const high = rows.map((r) => (r[1].high === null ? r[1].mean : r[1].high));
    const level = AF.percent(report.confidence);
    const opts = {
      width: Math.max(320, chart.clientWidth - 16),
      height: 280,
      scales: { x: { time: false } },
      axes: [{ label: report.search ? "load factor" : Object.keys(report.points[0].values)[0] }, { label: metric }],
      series: [
        {},
        { label: "mean", stroke: "#4e79a7", width: 2, points: { show: true, size: 6 } },
        { label: level + " low", stroke: "rgba(78, 121, 167, 0.4)", dash: [4, 4] },
        { label: level + " high", stroke: "rgba(78, 121, 167, 0.4)", dash: [4, 4] },
      ],
      bands: [{ series: [3, 2], fill: "rgba(78, 121, 167, 0.18)" }],
      plugins: [guides(report, metric)],
    };
    plot = new uPlot(opts, [x, mean, low, high], figure);
  }

  function render(view) {
    AF.setBadge(badge, view.status);
    AF.setProgress(progress, view.progress, view.status);
    showFacts(view);
    cancelButton.hidden = AF.FINAL.has(view.status);
    errorBox.hidden = !view.error;
    errorBox.textContent = view.error || "";
    const report = view.report;
    if (!report) return;
    if (!metricSelect.options.length) {
      for (const name of report.metrics) metricSelect.append(AF.el("option", { text: name }));
      const preferred = report.search ? report.search.objective.metric : "latency.p95";
      metricSelect.value = report.metrics.includes(preferred) ? preferred : report.metrics[0];
    }
    const metric = metricSelect.value;
    plotLink.href = url + "/plot?metric=" + encodeURIComponent(metric) + "&format=png";
    if (report.search) {
      answerBox.hidden = false;
      answerBox.textContent = report.search.status + ": " + report.search.message;
    }
    showTable(report, metric);
    drawChart(report, metric);
  }

  async function poll() {
    const answer = await AF.api("GET", url);
    if (!answer.ok) {
      errorBox.textContent = "The experiment could not be read: " + AF.errorText(answer);
      errorBox.hidden = false;
      window.setTimeout(poll, config.pollMs * 3);
      return;
    }
    last = answer.data;
    render(last);
    if (AF.FINAL.has(last.status)) {
      document.body.dataset.state = last.status;
    } else {
      window.setTimeout(poll, config.pollMs);
    }
  }

  metricSelect.addEventListener("change", () => last && render(last));
  cancelButton.addEventListener("click", async function () {
    cancelButton.disabled = true;
    const answer = await AF.api("POST", url + "/cancel");
    if (!answer.ok) {
      errorBox.textContent = "The experiment could not be cancelled: " + AF.errorText(answer);
      errorBox.hidden = false;
    }
    cancelButton.disabled = false;
  });

  poll();
})();
