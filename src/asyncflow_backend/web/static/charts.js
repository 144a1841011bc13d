/* Interactive charts of a run's results, drawn with uPlot (vendored, see docs/web.md).
 *
 * Time charts shade the injected events (outages red, latency spikes orange, slowdowns
 * teal) and the servers' random failures (purple, untagged: there may be hundreds),
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
  const EVENT_COLOURS = {
    outage: "rgba(214, 39, 40, 0.14)",
    spike: "rgba(242, 142, 43, 0.18)",
    slowdown: "rgba(0, 137, 123, 0.16)",
    failure: "rgba(148, 103, 189, 0.16)",
  };
  const EVENT_TEXT = { outage: "#b71c1c", spike: "#b85c00", slowdown: "#00695c" };
  const HEIGHT = 240;
  const REFINE_MAX_POINTS = 4000;
  const REFINE_DELAY_MS = 200;
  const TIME_LABEL = "simulated time (s)";
  // A chart with more components than this opens as small multiples, one per component.
  const SPLIT_ABOVE = 4;
  const MULTIPLE_HEIGHT = 150;

  /* Every chart drawn, by name, so that tests and the console can inspect them. */
  const plots = {};

  /* A uPlot plugin that shades event windows under the data and tags them with their id
   * (unless `untagged`: small multiples have no room for the ids). */
  function eventWindows(events, untagged) {
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
          (u) => untagged || clipped(u, (ctx) => {
            const pad = 4 * uPlot.pxRatio;
            ctx.font = "600 " + Math.round(11 * uPlot.pxRatio) + "px system-ui, sans-serif";
            ctx.textAlign = "left";
            ctx.textBaseline = "top";
            // Each id goes on the first row where it clears the ids already there, so
            // events close in time stack their ids instead of printing them over each other.
            const rowEnds = [];
            const placed = visible(u)
              .filter((ev) => ev.kind !== "failure")
              .sort((a, b) => a.start - b.start);
            const boxes = [];
            for (const ev of placed) {
              const x = Math.max(u.bbox.left, u.valToPos(ev.start, "x", true)) + pad;
              let row = rowEnds.findIndex((end) => end <= x);
              if (row < 0) row = rowEnds.push(0) - 1;
              const w = ctx.measureText(ev.id).width;
              rowEnds[row] = x + w + pad;
              const y = u.bbox.top + pad + row * 14 * uPlot.pxRatio;
              ctx.fillStyle = EVENT_TEXT[ev.kind];
              ctx.fillText(ev.id, x, y);
              boxes.push({ id: ev.id, x: x / uPlot.pxRatio, y: y / uPlot.pxRatio, w: w / uPlot.pxRatio, h: 12 });
            }
            u.eventLabels = boxes;
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
              // The label sits on a light box so that bars under it do not hide it, right
              // of its line, or left of it where the plot ends.
              const y = u.bbox.top + 2 * px + mark.row * 15 * px;
              const w = ctx.measureText(mark.label).width;
              const left = x + w + 6 * px > u.bbox.left + u.bbox.width ? x - w - 6 * px : x;
              ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
              ctx.fillRect(left + 2 * px, y - px, w + 4 * px, 13 * px);
              ctx.fillStyle = mark.colour;
              ctx.fillText(mark.label, left + 4 * px, y);
            }
            ctx.restore();
          },
        ],
      },
    };
  }

  /* Buttons that switch a chart between views: [{value, label}], `current` pressed.
   * onPick(value) redraws the chart. */
  function viewButtons(name, choices, current, onPick) {
    const group = AF.el("span", { className: "views", attrs: { role: "group", "aria-label": "view of " + name } });
    for (const choice of choices) {
      const button = AF.el("button", {
        text: choice.label,
        attrs: { type: "button", "data-view": choice.value, "aria-pressed": String(choice.value === current) },
      });
      button.addEventListener("click", () => {
        for (const b of group.children) b.setAttribute("aria-pressed", String(b === button));
        onPick(choice.value);
      });
      group.append(button);
    }
    return group;
  }

  /* The figure around a chart: title, view buttons, image links and the element uPlot
   * draws into. */
  function frame(container, name, title, imageLinks, views) {
    const links = AF.el("span", { className: "image-links" });
    if (imageLinks) {
      for (const fmt of ["png", "svg"]) {
        links.append(AF.el("a", { text: fmt.toUpperCase(), attrs: { href: imageLinks(fmt), target: "_blank", rel: "noopener" } }));
      }
    }
    const target = AF.el("div", { className: "plot" });
    const caption = [AF.el("span", { className: "chart-title", text: title })];
    if (views) caption.push(views);
    caption.push(links);
    const figure = AF.el("figure", { className: "chart", attrs: { "data-chart": name } }, [
      AF.el("figcaption", {}, caption),
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

  /* Draws `data` ([x, ...ys]) with uPlot in a new figure, or in `spec.parts` (a figure
   * already made, emptied first); keeps it sized to its column. `spec.yScale` replaces the
   * zero-based linear y scale, `spec.yTop` is a value the y range must reach (a capacity). */
  function draw(container, spec) {
    const parts = spec.parts || frame(container, spec.name, spec.title, spec.imageLinks, spec.views);
    if (!spec.keep) parts.target.replaceChildren();
    const height = spec.height || HEIGHT;
    const yTop = spec.yTop || 0;
    const opts = {
      width: width(parts.target),
      height: height,
      scales: {
        x: { time: false },
        y: spec.yScale || { range: (u, min, max) => zeroBased(u, min, Math.max(max, yTop)) },
      },
      axes: [
        { label: spec.xLabel, stroke: "#444", grid: { stroke: "#eee" }, ticks: { stroke: "#ddd" } },
        Object.assign(
          { label: spec.yLabel, stroke: "#444", grid: { stroke: "#eee" }, ticks: { stroke: "#ddd" }, size: 56 },
          spec.yAxis || {}
        ),
      ],
      series: [{ label: spec.xName, value: spec.xValue }].concat(spec.series),
      cursor: { drag: { x: true, y: false, setScale: true }, bind: {}, sync: spec.sync ? { key: spec.sync } : undefined },
      legend: { live: true, show: spec.legend !== false },
      plugins: spec.plugins || [],
      hooks: spec.hooks || {},
    };
    if (spec.onDoubleClick) {
      opts.cursor.bind.dblclick = (u, targ, handler) => (e) => spec.onDoubleClick(u, handler, e);
    }
    const plot = new uPlot(opts, spec.data, parts.target);
    if (spec.xRange) plot.setScale("x", { min: spec.xRange[0], max: spec.xRange[1] });
    plots[spec.plotKey || spec.name] = plot;
    if (!spec.plotKey) {
      parts.figure.dataset.points = String(spec.data[0].length);
      parts.figure.dataset.series = String(spec.data.length - 1);
    }
    const observer = new ResizeObserver(() => {
      if (!plot.root.isConnected) {
        observer.disconnect();
        return;
      }
      const w = width(parts.target);
      if (w !== plot.width) plot.setSize({ width: w, height: height });
    });
    observer.observe(parts.target);
    return { plot: plot, figure: parts.figure };
  }

  /* Legend values: whole counts with `significant` 0, else that many significant digits. */
  function valueFormatter(significant, unit) {
    const show = (v) => (significant === 0 ? AF.count(v) : AF.number(v, significant));
    return (u, v) => (v === null || v === undefined ? "–" : show(v) + (unit ? " " + unit : ""));
  }

  /* Removes the charts drawn under `name` (and its small multiples `name:component`). */
  function forget(name) {
    for (const key of Object.keys(plots)) {
      if (key === name || key.startsWith(name + ":")) {
        plots[key].destroy();
        delete plots[key];
      }
    }
  }

  const LATENCY_VIEWS = [
    { value: "log", label: "Log" },
    { value: "linear", label: "Linear" },
    { value: "cdf", label: "CDF" },
  ];

  /* Latency distribution, in ms, with the p50, p95 and p99 marked, in three views: the
   * histogram on a log count axis (first, so the tail shows), on a linear axis, and the
   * cumulative share of requests (CDF). */
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
    const total = hist.counts.reduce((a, b) => a + b, 0);
    const marks = [
      { value: ms(lat.p50), label: "p50", colour: "#333", row: 0 },
      { value: ms(lat.p95), label: "p95", colour: "#b85c00", row: 1 },
      { value: ms(lat.p99), label: "p99", colour: "#b71c1c", row: 2 },
    ];
    const parts = frame(container, "latency", title, imageLinks, viewButtons("latency", LATENCY_VIEWS, "log", show));

    function show(view) {
      forget("latency");
      parts.figure.dataset.view = view;
      const common = {
        name: "latency",
        parts: parts,
        xLabel: "latency (ms)",
        plugins: [markers(marks.map((m) => Object.assign({}, m, {
          label: m.label + " " + AF.ms(m.value === null ? null : m.value / 1000),
        })))],
        xRange: xRange,
        onDoubleClick: (u) => u.setScale("x", { min: xRange[0], max: xRange[1] }),
      };
      if (view === "cdf") {
        // Share of requests at or under each bin edge, joined by straight lines (requests
        // spread evenly inside a bin).
        let running = 0;
        const shares = [0].concat(hist.counts.map((c) => (running += c) / total));
        draw(container, Object.assign(common, {
          yLabel: "requests at or under (%)",
          xName: "latency",
          xValue: (u, v) => (v === null || v === undefined ? "–" : "≤ " + AF.number(v) + " ms"),
          series: [{
            label: "share",
            stroke: PALETTE[0],
            width: 1.5,
            points: { show: false },
            value: (u, v) => (v === null || v === undefined ? "–" : AF.number(v * 100) + " %"),
          }],
          yScale: { range: [0, 1.02] },
          yAxis: { values: (u, ticks) => ticks.map((t) => AF.number(t * 100) + " %") },
          data: [hist.edges.map((e) => e * 1000), shares],
        }));
        return;
      }
      const log = view === "log";
      // A log axis has no zero: empty bins are left out rather than drawn to -infinity.
      const counts = log ? hist.counts.map((c) => (c > 0 ? c : null)) : hist.counts;
      draw(container, Object.assign(common, {
        yLabel: log ? "requests (log scale)" : "requests",
        xName: "latency",
        xValue: (u, v) => (v === null || v === undefined ? "–" : AF.number(v - binMs / 2) + "–" + AF.number(v + binMs / 2) + " ms"),
        series: [{
          label: "requests",
          stroke: PALETTE[0],
          fill: "rgba(31, 119, 180, 0.55)",
          width: 0,
          paths: uPlot.paths.bars({ size: [1, Infinity, 1], gap: 1 }),
          points: { show: false },
          value: valueFormatter(0),
          fillTo: log ? (u) => u.scales.y.min : 0,
        }],
        yScale: log ? { distr: 3, log: 10 } : undefined,
        data: [centres, counts],
      }));
    }

    show("log");
  }

  /* Colours of the per-second outcome lines, as the images draw them (plots/throughput.py). */
  const OUTCOME_COLOURS = {
    goodput: "#59a14f",
    timed_out: "#f28e2b",
    rejected: "#b07aa1",
    dropped: "#9c755f",
    failed: "#e15759",
    attempts: "#76b7b2",
  };

  /* Answers in each simulated second (late ones included), as steps; beside them, when the
   * run has them, the completions within the timeout (the goodput, if some answers came
   * late), every other outcome per second and the attempts the client sent. */
  function throughput(container, results, events, imageLinks) {
    const perSecond = results.throughput.per_second;
    const title = "Throughput (answers per second)";
    if (!perSecond.length) {
      note(container, "throughput", title, "The run is shorter than a second.");
      return;
    }
    // One more point closes the last step at the end of its second.
    const closed = (values) => {
      const fitted = perSecond.map((_, i) => (values && i < values.length ? values[i] : 0));
      return fitted.concat([fitted[fitted.length - 1]]);
    };
    const t = perSecond.map((_, i) => i).concat([perSecond.length]);
    const y = perSecond.concat([perSecond[perSecond.length - 1]]);
    const requests = results.requests || {};
    const outcomes = requests.per_second || {};
    const extra = [];
    if (requests.late_answers) extra.push(["completed (goodput)", outcomes.completed, OUTCOME_COLOURS.goodput]);
    for (const name of ["timed_out", "rejected", "dropped", "failed"]) {
      const series = outcomes[name];
      if (series && series.some((n) => n > 0)) extra.push([name.replace("_", " "), series, OUTCOME_COLOURS[name]]);
    }
    if (requests.attempts_per_second && requests.attempts_per_second.length) {
      extra.push(["attempts sent", requests.attempts_per_second, OUTCOME_COLOURS.attempts]);
    }
    const stepped = (label, stroke) => ({
      label: label,
      stroke: stroke,
      width: 1.2,
      paths: uPlot.paths.stepped({ align: 1 }),
      points: { show: false },
      value: valueFormatter(0, "/s"),
    });
    draw(container, {
      name: "throughput",
      title: title,
      imageLinks: imageLinks,
      xLabel: TIME_LABEL,
      yLabel: "requests / s",
      xName: "second",
      xValue: (u, v) => (v === null || v === undefined ? "–" : "[" + v + ", " + (v + 1) + ") s"),
      series: [{
        label: "answers",
        stroke: PALETTE[0],
        fill: "rgba(31, 119, 180, 0.08)",
        width: 1.5,
        paths: uPlot.paths.stepped({ align: 1 }),
        points: { show: false },
        value: valueFormatter(0, "/s"),
      }].concat(extra.map(([label, , stroke]) => stepped(label, stroke))),
      data: [t, y].concat(extra.map(([, series]) => closed(series))),
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
      title: title + " (" + AF.number(w) + " s windows" + (over.merged ? ", merged for display" : "") + ")",
      imageLinks: imageLinks,
      xLabel: TIME_LABEL,
      yLabel: "latency (ms)",
      xName: "window",
      xValue: (u, v) => (v === null || v === undefined ? "–" : "[" + AF.number(v, 4) + ", " + AF.number(v + w, 4) + ") s"),
      series: ["p50", "p95", "p99"].map((name) => ({
        label: name,
        stroke: colours[name],
        width: 1.5,
        paths: uPlot.paths.stepped({ align: 1 }),
        points: { show: false },
        value: valueFormatter(3, "ms"),
      })),
      data: [t, ms(over.p50), ms(over.p95), ms(over.p99)],
      plugins: [eventWindows(events)],
      onDoubleClick: (u, handler, e) => handler(e),
    });
  }

  /* Each autoscaled replica group: replicas in service (solid) and ready (dashed) as steps
   * over simulated time. Drawn only for runs with an autoscaler. */
  function replicas(container, results, events, imageLinks) {
    const groups = results.replica_groups || {};
    const scaled = Object.keys(groups).filter((id) => groups[id].autoscaling);
    if (!scaled.length) return;
    const steps = [];
    for (const id of scaled) {
      const a = groups[id].autoscaling;
      steps.push([id + " in service", a.replicas_over_time, false], [id + " ready", a.ready_over_time, true]);
    }
    const times = Array.from(new Set(steps.flatMap(([, series]) => series.map(([t]) => t)))).sort((x, y) => x - y);
    // The count at each time: the last step at or before it.
    const at = (series) => times.map((t) => {
      let n = series[0][1];
      for (const [time, count] of series) if (time <= t) n = count;
      return n;
    });
    draw(container, {
      name: "replicas",
      title: "Replicas (autoscaled groups)",
      imageLinks: imageLinks,
      xLabel: TIME_LABEL,
      yLabel: "replicas",
      xName: "time",
      xValue: (u, v) => (v === null || v === undefined ? "–" : AF.number(v, 4) + " s"),
      series: steps.map(([label, , dashed], i) => ({
        label: label,
        stroke: PALETTE[Math.floor(i / 2) % PALETTE.length],
        width: 1.6,
        dash: dashed ? [6, 4] : undefined,
        paths: uPlot.paths.stepped({ align: 1 }),
        points: { show: false },
        value: valueFormatter(0, ""),
      })),
      data: [times].concat(steps.map(([, series]) => at(series))),
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

    const colourOf = (c) => run.colours[c] || PALETTE[0];
    const ceilings = capacityLines(run.results, spec, components, colourOf);
    const yTop = Math.max(0, ...ceilings.map((line) => line.value));
    const views = components.length > 1
      ? viewButtons(spec.name, [{ value: "overlay", label: "Together" }, { value: "split", label: "One each" }],
        components.length > SPLIT_ABOVE ? "split" : "overlay", show)
      : null;
    const parts = frame(container, spec.name, spec.title, spec.imageLinks, views);

    function show(view) {
      forget(spec.name);
      state.request++;
      state.refined = false;
      parts.figure.dataset.view = view;
      parts.figure.dataset.resolution = period > rawPeriod * 1.0001 ? "buckets" : "raw";
      if (view === "split") split();
      else overlay();
    }

    /* Small multiples: one chart per component, the same y range, zoom and cursor shared. */
    function split() {
      const grid = AF.el("div", { className: "multiples" });
      parts.target.replaceChildren(grid);
      let top = yTop;
      for (const c of components) for (const v of perComponent[c]) if (v !== null && v > top) top = v;
      const range = [0, top > 0 ? top * 1.08 : 1];
      let syncing = false;
      components.forEach((c, i) => {
        const cell = AF.el("div", { className: "multiple", attrs: { "data-component": c } });
        const target = AF.el("div", { className: "plot" });
        cell.append(AF.el("p", { className: "multiple-title", text: c }), target);
        grid.append(cell);
        draw(container, {
          name: spec.name,
          plotKey: spec.name + ":" + c,
          parts: { figure: parts.figure, target: target },
          height: MULTIPLE_HEIGHT,
          xLabel: "",
          yLabel: spec.yLabel,
          xName: "t",
          xValue: valueFormatter(4, "s"),
          series: [{ label: c, stroke: colourOf(c), width: 1.25, points: { show: false }, value: valueFormatter(3, spec.unit) }],
          data: [t, full[i + 1]],
          yScale: { range: range },
          sync: "multiples-" + spec.name,
          legend: false,
          plugins: [eventWindows(run.events, true), capacityPlugin(ceilings.filter((line) => line.owners.includes(c)))],
          hooks: {
            setScale: [(u, key) => {
              if (key !== "x" || syncing) return;
              syncing = true;
              for (const other of components) {
                const p = plots[spec.name + ":" + other];
                if (p && p !== u) p.setScale("x", { min: u.scales.x.min, max: u.scales.x.max });
              }
              syncing = false;
            }],
          },
          onDoubleClick: (u, handler, e) => handler(e),
        });
      });
      parts.figure.dataset.points = String(t.length);
      parts.figure.dataset.series = String(components.length);
    }

    function overlay() {
      draw(container, {
      name: spec.name,
      parts: parts,
      xLabel: TIME_LABEL,
      yLabel: spec.yLabel,
      xName: "t",
      xValue: valueFormatter(4, "s"),
      series: components.map((c) => ({
        label: c,
        stroke: colourOf(c),
        width: 1.25,
        points: { show: false },
        value: valueFormatter(3, spec.unit),
      })),
      data: full,
      yTop: yTop,
      plugins: [eventWindows(run.events), capacityPlugin(ceilings)],
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
    }

    show(components.length > 1 && components.length > SPLIT_ABOVE ? "split" : "overlay");
  }

  /* The ceilings of a metric's components (a server's RAM, a pool's size), one line per
   * distinct value: [{value, owners, colour, label}]; components sharing a ceiling share a
   * dark line, so no label covers another. */
  function capacityLines(results, spec, components, colourOf) {
    if (!spec.capacity) return [];
    const summaries = { server: results.servers, edge: results.edges, pool: results.pools || {} }[spec.kind] || {};
    const byValue = new Map();
    for (const c of components) {
      const value = (summaries[c] || {})[spec.capacity];
      if (value === null || value === undefined) continue;
      if (!byValue.has(value)) byValue.set(value, []);
      byValue.get(value).push(c);
    }
    return Array.from(byValue, ([value, owners]) => ({
      value: value,
      owners: owners,
      colour: owners.length === 1 ? colourOf(owners[0]) : "#333",
      label: owners.join(", ") + ": " + AF.number(value, 4) + (spec.yLabel ? " " + spec.yLabel : "") + " capacity",
    }));
  }

  /* A uPlot plugin that draws dashed horizontal capacity lines, labelled at their right end. */
  function capacityPlugin(lines) {
    return {
      hooks: {
        draw: [
          (u) => {
            const ctx = u.ctx;
            const px = uPlot.pxRatio;
            ctx.save();
            ctx.font = "600 " + Math.round(11 * px) + "px system-ui, sans-serif";
            ctx.textAlign = "right";
            ctx.textBaseline = "bottom";
            for (const line of lines) {
              const y = Math.round(u.valToPos(line.value, "y", true));
              if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
              ctx.strokeStyle = line.colour;
              ctx.setLineDash([6 * px, 4 * px]);
              ctx.lineWidth = 1.5 * px;
              ctx.beginPath();
              ctx.moveTo(u.bbox.left, y);
              ctx.lineTo(u.bbox.left + u.bbox.width, y);
              ctx.stroke();
              ctx.fillStyle = line.colour;
              ctx.fillText(line.label, u.bbox.left + u.bbox.width - 4 * px, y - 2 * px);
            }
            ctx.restore();
          },
        ],
      },
    };
  }

  function pad(values, length) {
    if (values.length === length) return values;
    return values.concat(new Array(length - values.length).fill(null));
  }

  /* The sampled metrics as the server's catalogue declares them (page config `metrics`). */
  function sampledSpecs(metrics) {
    return (metrics || []).map((m) => ({
      name: m.chart, metric: m.metric, title: m.title, yLabel: m.unit, unit: m.unit === "MB" ? "MB" : "",
      kind: m.kind, capacity: m.capacity_field,
    }));
  }

  /* One colour per server, edge and pool, the same in every chart of the run and in its
   * images: each kind numbered in the sorted order of its ids, as the server's plots do. */
  function componentColours(results, palette) {
    const colours = {};
    for (const group of [results.servers || {}, results.edges || {}, results.pools || {}]) {
      Object.keys(group).sort().forEach((id, k) => { colours[id] = palette[k % palette.length]; });
    }
    return colours;
  }

  /* Draws every chart of a succeeded run into `container`.
   * run: {id, results, events, rawPeriod, metrics, palette, plotUrl(name, fmt)}; `metrics`
   * is the catalogue of sampled metrics (a metric no component sampled draws nothing),
   * `palette` the components' colours in order (the images' palette). */
  function drawAll(container, run) {
    const links = (name) => (fmt) => run.plotUrl(name, fmt);
    run.colours = componentColours(run.results, run.palette && run.palette.length ? run.palette : PALETTE);
    latencyHistogram(container, run.results, links("latency"));
    latencyOverTime(container, run.results, run.events, links("latency_over_time"));
    throughput(container, run.results, run.events, links("throughput"));
    replicas(container, run.results, run.events, links("replicas"));
    const series = run.results.time_series.series || {};
    for (const spec of sampledSpecs(run.metrics)) {
      // Pools exist only where a scenario declares them: no empty chart for the others.
      if (spec.name.startsWith("pool_") && !series[spec.metric]) continue;
      sampled(container, run, Object.assign({ imageLinks: links(spec.name) }, spec));
    }
  }

  return { drawAll: drawAll, plots: plots, componentColours: componentColours };
})();
