/* Interactive charts of a run's results, drawn with uPlot (vendored, see docs/web.md).
 *
 * Time charts shade the injected events (outages red, latency spikes orange),
 * zoom by dragging across them and zoom out on double-click. The results hold
 * the series averaged into at most `maxPoints` buckets; once a zoomed window
 * holds few enough raw samples, the window is fetched again from /timeseries
 * at full resolution, so zooming in shows the real samples, spikes included.
 */
"use strict";

window.AsyncFlowCharts = (function () {
  const AF = window.AsyncFlow;
  const PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#d62728",
  ];
  const EVENT_COLOURS = { outage: "rgba(214, 39, 40, 0.14)", spike: "rgba(242, 142, 43, 0.18)" };
  const EVENT_TEXT = { outage: "#b71c1c", spike: "#b85c00" };
  const HEIGHT = 240;
  const REFINE_MAX_POINTS = 4000;
  const REFINE_DELAY_MS = 200;
  const TIME_LABEL = "simulated time (s)";

  /* Every chart drawn, by name, so that tests and the console can inspect them. */
  const plots = {};

  /* A uPlot plugin that shades event windows under the data and tags them with their id. */
  function eventWindows(events) {
    function visible(u) {
      const min = u.scales.x.min;
      const max = u.scales.x.max;
      return events.filter((ev) => ev.end > min && ev.start < max);
    }
    function clipped(u, draw) {
      const ctx = u.ctx;
      ctx.save();
      ctx.beginPath();
      ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
      ctx.clip();
      draw(ctx);
      ctx.restore();
    }
    return {
      hooks: {
        drawClear: [
          (u) => clipped(u, (ctx) => {
            for (const ev of visible(u)) {
              const x0 = u.valToPos(ev.start, "x", true);
              const x1 = u.valToPos(ev.end, "x", true);
              ctx.fillStyle = EVENT_COLOURS[ev.kind];
              ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
            }
          }),
        ],
        draw: [
          (u) => clipped(u, (ctx) => {
            const pad = 4 * uPlot.pxRatio;
            ctx.font = "600 " + Math.round(11 * uPlot.pxRatio) + "px system-ui, sans-serif";
            ctx.textAlign = "left";
            ctx.textBaseline = "top";
            let row = 0;
            let rowEnd = -Infinity;
            for (const ev of visible(u)) {
              const x = Math.max(u.bbox.left, u.valToPos(ev.start, "x", true)) + pad;
              row = x < rowEnd ? row + 1 : 0;
              ctx.fillStyle = EVENT_TEXT[ev.kind];
              ctx.fillText(ev.id, x, u.bbox.top + pad + row * 14 * uPlot.pxRatio);
              rowEnd = x + ctx.measureText(ev.id).width + pad;
            }
          }),
        ],
      },
    };
  }

  /* A uPlot plugin that draws labelled vertical markers (percentiles on the histogram). */
  function markers(list) {
    return {
      hooks: {
        draw: [
          (u) => {
            const ctx = u.ctx;
            ctx.save();
            const px = uPlot.pxRatio;
            ctx.font = "600 " + Math.round(11 * px) + "px system-ui, sans-serif";
            ctx.textAlign = "left";
            ctx.textBaseline = "top";
            for (const mark of list) {
              if (mark.value === null || mark.value < u.scales.x.min || mark.value > u.scales.x.max) continue;
              const x = Math.round(u.valToPos(mark.value, "x", true));
              ctx.strokeStyle = mark.colour;
              ctx.setLineDash([4 * px, 3 * px]);
              ctx.lineWidth = px;
              ctx.beginPath();
              ctx.moveTo(x, u.bbox.top);
              ctx.lineTo(x, u.bbox.top + u.bbox.height);
              ctx.stroke();
              // The label sits on a light box so that bars under it do not hide it.
              const y = u.bbox.top + 2 * px + mark.row * 15 * px;
              const w = ctx.measureText(mark.label).width;
              ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
              ctx.fillRect(x + 2 * px, y - px, w + 4 * px, 13 * px);
              ctx.fillStyle = mark.colour;
              ctx.fillText(mark.label, x + 4 * px, y);
            }
            ctx.restore();
          },
        ],
      },
    };
  }

  /* The figure around a chart: title, image links and the element uPlot draws into. */
  function frame(container, name, title, imageLinks) {
    const links = AF.el("span", { className: "image-links" });
    if (imageLinks) {
      for (const fmt of ["png", "svg"]) {
        links.append(AF.el("a", { text: fmt.toUpperCase(), attrs: { href: imageLinks(fmt), target: "_blank", rel: "noopener" } }));
      }
    }
    const target = AF.el("div", { className: "plot" });
    const figure = AF.el("figure", { className: "chart", attrs: { "data-chart": name } }, [
      AF.el("figcaption", {}, [AF.el("span", { className: "chart-title", text: title }), links]),
      target,
    ]);
    container.append(figure);
    return { figure: figure, target: target };
  }

  function note(container, name, title, text) {
    const parts = frame(container, name, title, null);
    parts.target.append(AF.el("p", { className: "no-data", text: text }));
    parts.figure.dataset.points = "0";
  }

  function width(target) {
    return Math.max(280, Math.floor(target.clientWidth));
  }

  function zeroBased(u, min, max) {
    const top = max > 0 ? max * 1.08 : 1;
    return [Math.min(0, min), top];
  }

  /* Draws `data` ([x, ...ys]) with uPlot in a new figure; keeps it sized to its column. */
  function draw(container, spec) {
    const parts = frame(container, spec.name, spec.title, spec.imageLinks);
    const opts = {
      width: width(parts.target),
      height: HEIGHT,
      scales: { x: { time: false }, y: { range: zeroBased } },
      axes: [
        { label: spec.xLabel, stroke: "#444", grid: { stroke: "#eee" }, ticks: { stroke: "#ddd" } },
        { label: spec.yLabel, stroke: "#444", grid: { stroke: "#eee" }, ticks: { stroke: "#ddd" }, size: 56 },
      ],
      series: [{ label: spec.xName, value: spec.xValue }].concat(spec.series),
      cursor: { drag: { x: true, y: false, setScale: true }, bind: {} },
      legend: { live: true },
      plugins: spec.plugins || [],
      hooks: spec.hooks || {},
    };
    if (spec.onDoubleClick) {
      opts.cursor.bind.dblclick = (u, targ, handler) => (e) => spec.onDoubleClick(u, handler, e);
    }
    const plot = new uPlot(opts, spec.data, parts.target);
    if (spec.xRange) plot.setScale("x", { min: spec.xRange[0], max: spec.xRange[1] });
    plots[spec.name] = plot;
    parts.figure.dataset.points = String(spec.data[0].length);
    parts.figure.dataset.series = String(spec.data.length - 1);
    new ResizeObserver(() => {
      const w = width(parts.target);
      if (w !== plot.width) plot.setSize({ width: w, height: HEIGHT });
    }).observe(parts.target);
    return { plot: plot, figure: parts.figure };
  }

  function valueFormatter(digits, unit) {
    return (u, v) => (v === null || v === undefined ? "–" : AF.number(v, digits) + (unit ? " " + unit : ""));
  }

  /* Latency histogram: bars per bin (in ms) with the p50, p95 and p99 marked. */
  function latencyHistogram(container, results, imageLinks) {
    const hist = results.latency.histogram;
    const title = "Latency distribution";
    if (!hist.counts.length) {
      note(container, "latency", title, "No request completed, so there is no latency to show.");
      return;
    }
    const centres = hist.counts.map((_, i) => ((hist.edges[i] + hist.edges[i + 1]) / 2) * 1000);
    const binMs = (hist.edges[1] - hist.edges[0]) * 1000;
    // From the first bin's left edge to the last bin's right edge, so no bar is cut in half.
    const xRange = [hist.edges[0] * 1000, hist.edges[hist.edges.length - 1] * 1000];
    const lat = results.latency;
    const ms = (s) => (s === null ? null : s * 1000);
    draw(container, {
      name: "latency",
      title: title,
      imageLinks: imageLinks,
      xLabel: "latency (ms)",
      yLabel: "requests",
      xName: "latency",
      xValue: (u, v) => (v === null || v === undefined ? "–" : AF.number(v - binMs / 2, 2) + "–" + AF.number(v + binMs / 2, 2) + " ms"),
      series: [{
        label: "requests",
        stroke: PALETTE[0],
        fill: "rgba(31, 119, 180, 0.55)",
        width: 0,
        paths: uPlot.paths.bars({ size: [1, Infinity, 1], gap: 1 }),
        points: { show: false },
        value: valueFormatter(0),
      }],
      data: [centres, hist.counts],
      plugins: [markers([
        { value: ms(lat.p50), label: "p50", colour: "#333", row: 0 },
        { value: ms(lat.p95), label: "p95", colour: "#b85c00", row: 1 },
        { value: ms(lat.p99), label: "p99", colour: "#b71c1c", row: 2 },
      ])],
      xRange: xRange,
      onDoubleClick: (u) => u.setScale("x", { min: xRange[0], max: xRange[1] }),
    });
  }

  /* Completions in each simulated second, as steps. */
  function throughput(container, results, events, imageLinks) {
    const perSecond = results.throughput.per_second;
    const title = "Throughput (completions per second)";
    if (!perSecond.length) {
      note(container, "throughput", title, "The run is shorter than a second.");
      return;
    }
    // One more point closes the last step at the end of its second.
    const t = perSecond.map((_, i) => i).concat([perSecond.length]);
    const y = perSecond.concat([perSecond[perSecond.length - 1]]);
    draw(container, {
      name: "throughput",
      title: title,
      imageLinks: imageLinks,
      xLabel: TIME_LABEL,
      yLabel: "requests / s",
      xName: "second",
      xValue: (u, v) => (v === null || v === undefined ? "–" : "[" + v + ", " + (v + 1) + ") s"),
      series: [{
        label: "completed",
        stroke: PALETTE[0],
        fill: "rgba(31, 119, 180, 0.08)",
        width: 1.5,
        paths: uPlot.paths.stepped({ align: 1 }),
        points: { show: false },
        value: valueFormatter(0, "/s"),
      }],
      data: [t, y],
      plugins: [eventWindows(events)],
      onDoubleClick: (u, handler, e) => handler(e),
    });
  }

  /* p50, p95 and p99 per window of simulated time, in ms; empty windows leave gaps. */
  function latencyOverTime(container, results, events, imageLinks) {
    const over = results.latency.over_time;
    const title = "Latency over time";
    if (!over || !over.count.some((c) => c > 0)) {
      note(container, "latency_over_time", title, "No request completed.");
      return;
    }
    const w = over.window_s;
    const t = over.count.map((_, k) => k * w).concat([over.count.length * w]);
    const ms = (values) => {
      const y = values.map((v) => (v === null ? null : v * 1000));
      return y.concat([y[y.length - 1]]);
    };
    const colours = { p50: "#4e79a7", p95: "#f28e2b", p99: "#e15759" };
    draw(container, {
      name: "latency_over_time",
      title: title + " (" + AF.number(w, 0) + " s windows" + (over.merged ? ", merged for display" : "") + ")",
      imageLinks: imageLinks,
      xLabel: TIME_LABEL,
      yLabel: "latency (ms)",
      xName: "window",
      xValue: (u, v) => (v === null || v === undefined ? "–" : "[" + AF.number(v, 0) + ", " + AF.number(v + w, 0) + ") s"),
      series: ["p50", "p95", "p99"].map((name) => ({
        label: name,
        stroke: colours[name],
        width: 1.5,
        paths: uPlot.paths.stepped({ align: 1 }),
        points: { show: false },
        value: valueFormatter(2, "ms"),
      })),
      data: [t, ms(over.p50), ms(over.p95), ms(over.p99)],
      plugins: [eventWindows(events)],
      onDoubleClick: (u, handler, e) => handler(e),
    });
  }

  /* One sampled metric, one line per component; zooming refetches raw samples. */
  function sampled(container, run, spec) {
    const perComponent = (run.results.time_series.series || {})[spec.metric] || {};
    const components = Object.keys(perComponent).sort();
    const longest = Math.max(0, ...components.map((c) => perComponent[c].length));
    if (!components.length || longest === 0) {
      note(container, spec.name, spec.title, "This metric was not sampled in this run.");
      return;
    }
    // Bucket k averages the raw samples in [k P, (k + 1) P): put it at their mean time.
    const period = run.results.time_series.sample_period_s;
    const rawPeriod = run.rawPeriod || period;
    const offset = Math.max(0, (period - rawPeriod) / 2);
    const t = Array.from({ length: longest }, (_, k) => k * period + offset);
    const full = [t].concat(components.map((c) => pad(perComponent[c], longest)));
    const state = { refined: false, window: [0, 0], request: 0, timer: null };

    function refineLater(u) {
      window.clearTimeout(state.timer);
      state.timer = window.setTimeout(() => refine(u), REFINE_DELAY_MS);
    }

    async function refine(u) {
      const min = Math.max(0, u.scales.x.min);
      const max = u.scales.x.max;
      const rawInWindow = (max - min) / rawPeriod;
      const coarse = period > rawPeriod * 1.0001;
      const zoomed = max - min < 0.9 * (t[t.length - 1] - t[0]);
      if (!coarse || !zoomed || rawInWindow > REFINE_MAX_POINTS || max <= min) return;
      // Zooming inside a window already fetched raw needs nothing new.
      if (state.refined && min >= state.window[0] - rawPeriod && max <= state.window[1] + rawPeriod) return;
      const request = ++state.request;
      const url = AF.runUrl(run.id) + "/timeseries?metric=" + encodeURIComponent(spec.metric)
        + "&start=" + min + "&end=" + max + "&max_points=" + (REFINE_MAX_POINTS + 1);
      const answer = await AF.api("GET", url);
      if (!answer.ok || request !== state.request) return;
      const byComponent = {};
      for (const s of answer.data.series) byComponent[s.component] = s;
      const first = byComponent[components[0]];
      if (!first || components.some((c) => !byComponent[c] || byComponent[c].t.length !== first.t.length)) return;
      const data = [first.t].concat(components.map((c) => byComponent[c].values));
      state.refined = true;
      state.window = [min, max];
      // The fetched samples span the zoomed window, so rescaling to them keeps the view.
      u.setData(data);
      u.root.closest("figure").dataset.resolution = "raw";
      u.root.closest("figure").dataset.points = String(first.t.length);
    }

    const drawn = draw(container, {
      name: spec.name,
      title: spec.title,
      imageLinks: spec.imageLinks,
      xLabel: TIME_LABEL,
      yLabel: spec.yLabel,
      xName: "t",
      xValue: valueFormatter(3, "s"),
      series: components.map((c, i) => ({
        label: c,
        stroke: PALETTE[i % PALETTE.length],
        width: 1.25,
        points: { show: false },
        value: valueFormatter(2, spec.unit),
      })),
      data: full,
      plugins: [eventWindows(run.events)],
      hooks: { setScale: [(u, key) => { if (key === "x") refineLater(u); }] },
      onDoubleClick: (u, handler, e) => {
        state.request++;
        if (state.refined) {
          state.refined = false;
          u.setData(full, true);
          u.root.closest("figure").dataset.resolution = "buckets";
          u.root.closest("figure").dataset.points = String(full[0].length);
        } else {
          handler(e);
        }
      },
    });
    drawn.figure.dataset.resolution = period > rawPeriod * 1.0001 ? "buckets" : "raw";
  }

  function pad(values, length) {
    if (values.length === length) return values;
    return values.concat(new Array(length - values.length).fill(null));
  }

  /* The sampled metrics as the server's catalogue declares them (page config `metrics`). */
  function sampledSpecs(metrics) {
    return (metrics || []).map((m) => ({
      name: m.chart, metric: m.metric, title: m.title, yLabel: m.unit, unit: m.unit === "MB" ? "MB" : "",
    }));
  }

  /* Draws every chart of a succeeded run into `container`.
   * run: {id, results, events, rawPeriod, metrics, plotUrl(name, fmt)}; `metrics` is the
   * catalogue of sampled metrics, and a metric no component sampled draws nothing. */
  function drawAll(container, run) {
    const links = (name) => (fmt) => run.plotUrl(name, fmt);
    latencyHistogram(container, run.results, links("latency"));
    latencyOverTime(container, run.results, run.events, links("latency_over_time"));
    throughput(container, run.results, run.events, links("throughput"));
    const series = run.results.time_series.series || {};
    for (const spec of sampledSpecs(run.metrics)) {
      // Pools exist only where a scenario declares them: no empty chart for the others.
      if (spec.name.startsWith("pool_") && !series[spec.metric]) continue;
      sampled(container, run, Object.assign({ imageLinks: links(spec.name) }, spec));
    }
  }

  return { drawAll: drawAll, plots: plots };
})();
