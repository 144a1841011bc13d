/* One run: follows its status until it ends, then shows its summary and charts.
 *
 * `document.body.dataset.state` says where the page stands: `waiting` while the
 * run is queued or running, then `ready` (charts drawn), `failed`, `cancelled`
 * or `error` (the results could not be read).
 */
"use strict";

(function () {
  const AF = window.AsyncFlow;
  const config = AF.pageConfig();
  const runId = config.runId;
  // The command-line summary warns above the same share (cli.NOT_COMPLETED_WARNING_SHARE).
  const NOT_COMPLETED_WARNING_SHARE = 0.01;
  // From the scenario the run was accepted with (readScenario).
  let events = [];
  let samplePeriodS = null;

  const statusBadge = document.getElementById("run-status");
  const progress = document.getElementById("run-progress");
  const facts = document.getElementById("run-facts");
  const errorBox = document.getElementById("run-error");
  const cancelButton = document.getElementById("cancel");

  document.body.dataset.state = "waiting";

  function plotUrl(name, fmt) {
    return AF.runUrl(runId) + "/plots/" + encodeURIComponent(name) + "?format=" + fmt;
  }

  function setFacts(list) {
    facts.replaceChildren();
    for (const [name, value] of list) {
      facts.append(AF.el("div", {}, [AF.el("dt", { text: name }), AF.el("dd", { text: value })]));
    }
  }

  function showName(name) {
    const node = document.getElementById("run-name");
    node.textContent = name || "";
    node.hidden = !name;
    if (name) document.title = "AsyncFlow: " + name + " (run " + runId.slice(0, 8) + ")";
  }

  function showRun(run) {
    showName(run.name);
    AF.setBadge(statusBadge, run.status);
    AF.setProgress(progress, run.status === "succeeded" ? 1 : run.progress, run.status);
    setFacts([
      ["progress", Math.round((run.status === "succeeded" ? 1 : run.progress) * 100) + " %"],
      ["simulated", AF.number(run.simulated_s) + " s"],
      ["created", AF.clock(run.created_at)],
      ["started", AF.clock(run.started_at)],
      ["finished", AF.clock(run.finished_at)],
      ["duration", run.started_at ? AF.duration(run.started_at, run.finished_at) : "–"],
      ["seed", run.seed === null ? "–" : String(run.seed)],
      ["attempts", String(run.attempts)],
    ]);
    cancelButton.hidden = AF.FINAL.has(run.status) || run.cancel_requested;
    if (run.error) {
      errorBox.textContent = run.error;
      errorBox.hidden = false;
    }
  }

  async function poll() {
    const answer = await AF.api("GET", AF.runUrl(runId));
    if (!answer.ok) {
      errorBox.textContent = "The run's status could not be read: " + AF.errorText(answer);
      errorBox.hidden = false;
      window.setTimeout(poll, config.pollMs * 3);
      return;
    }
    const run = answer.data;
    showRun(run);
    if (run.status === "succeeded") {
      await showResults();
    } else if (AF.FINAL.has(run.status)) {
      document.body.dataset.state = run.status;
    } else {
      window.setTimeout(poll, config.pollMs);
    }
  }

  cancelButton.addEventListener("click", async function () {
    cancelButton.disabled = true;
    const answer = await AF.api("POST", AF.runUrl(runId) + "/cancel");
    if (!answer.ok) {
      errorBox.textContent = "The run could not be cancelled: " + AF.errorText(answer);
      errorBox.hidden = false;
      cancelButton.disabled = false;
    }
  });

  /* ---- results ---- */

  function stat(label, value, hint) {
    return AF.el("div", { className: "stat" }, [
      AF.el("div", { className: "stat-value", text: value }),
      AF.el("div", { className: "stat-label", text: label, attrs: hint ? { title: hint } : {} }),
    ]);
  }

  function statGroup(title, items) {
    return AF.el("div", { className: "stat-group" }, [AF.el("h3", { text: title })].concat(items));
  }

  function showStats(results) {
    const r = results.requests;
    const lat = results.latency;
    const meta = results.meta;
    const where = (counts) => Object.entries(counts || {}).map(([place, n]) => place + ": " + n).join(", ");
    const requestStats = [
      stat("generated", AF.count(r.generated)),
      stat("completed", AF.count(r.completed)),
      stat("dropped", AF.count(r.dropped), where(r.dropped_at) || "none"),
    ];
    // Outcomes a scenario without timeouts, admission control or calls cannot have stay hidden.
    for (const [label, count, at] of [
      ["failed", r.failed, r.failed_at],
      ["timed out", r.timed_out, r.timed_out_at],
      ["rejected", r.rejected, r.rejected_at],
    ]) {
      if (count) requestStats.push(stat(label, AF.count(count), where(at)));
    }
    if (r.late_answers) requestStats.push(stat("late answers", AF.count(r.late_answers)));
    if (r.retries) {
      requestStats.push(stat("attempts", AF.count(r.attempts), "first attempts + retries: requests on the wire"));
      requestStats.push(stat("retries", AF.count(r.retries)));
    }
    if (r.retries_refused) requestStats.push(stat("retries refused", AF.count(r.retries_refused), "by the retry budget"));
    requestStats.push(stat("in flight at the end", AF.count(r.in_flight)));
    const goodput = results.throughput.goodput_rps;
    const share = r.not_completed_share;
    const outcome = results.time_to_outcome;
    showNotCompleted(results);
    // The latency counts completed requests only: what did not complete and the goodput
    // stand beside it, so that a system failing most requests cannot look fast.
    const beside = [];
    if (goodput != null) {
      beside.push(stat("goodput (completed)", AF.number(goodput) + " req/s", "completed within their timeout, per second"));
    }
    if (share != null) beside.push(stat("not completed", AF.percent(share), "generated requests that did not complete, in flight at the end included"));
    const latencyGroup = statGroup("Latency (completed)", beside.concat([
      stat("mean", AF.ms(lat.mean)),
      stat("p50", AF.ms(lat.p50)),
      stat("p90", AF.ms(lat.p90)),
      stat("p95", AF.ms(lat.p95)),
      stat("p99", AF.ms(lat.p99)),
      stat("max", AF.ms(lat.max)),
    ]));
    latencyGroup.id = "latency-stats";
    const groups = [statGroup("Requests", requestStats), latencyGroup];
    if (outcome) {
      const outcomeGroup = statGroup("Time to outcome (all ended)", [
        stat("mean", AF.ms(outcome.mean)),
        stat("p50", AF.ms(outcome.p50)),
        stat("p95", AF.ms(outcome.p95)),
        stat("p99", AF.ms(outcome.p99)),
        stat("max", AF.ms(outcome.max)),
      ]);
      outcomeGroup.id = "outcome-stats";
      outcomeGroup.title = "every request that ended, however it ended: a timeout at its timeout";
      groups.push(outcomeGroup);
    }
    document.getElementById("stats").replaceChildren(
      ...groups,
      statGroup("Run", [
        stat("throughput (answers)", AF.number(results.throughput.mean_rps) + " req/s", "answers per second, late ones included"),
        stat("simulated", AF.number(meta.simulated_seconds) + " s"),
        stat("wall time", AF.number(meta.wall_seconds) + " s"),
        stat("events processed", AF.count(meta.events_processed)),
        stat("seed", String(meta.seed)),
        stat("engine", meta.engine_version),
      ])
    );
  }

  /* Above the summary, in words, when more than 1 % of the requests did not complete:
   * the latency below then leaves out much of what happened. */
  function showNotCompleted(results) {
    const r = results.requests;
    const box = document.getElementById("not-completed-warning");
    const share = r.not_completed_share;
    if (share == null || share <= NOT_COMPLETED_WARNING_SHARE) {
      box.hidden = true;
      return;
    }
    const ways = [
      ["timed out", r.timed_out],
      ["rejected", r.rejected],
      ["failed", r.failed],
      ["dropped", r.dropped],
      ["still in flight at the end", r.in_flight],
    ].filter(([, n]) => n).map(([label, n]) => AF.count(n) + " " + label);
    const goodput = results.throughput.goodput_rps;
    box.textContent = "Warning: " + AF.percent(share) + " of requests did not complete (" + ways.join(", ") + ")" +
      (goodput == null ? "" : "; goodput " + AF.number(goodput) + " req/s") +
      ". The latency below counts completed requests only; the time to outcome counts every request that ended.";
    box.hidden = false;
  }

  function fillTable(id, rows) {
    const body = document.querySelector("#" + id + " tbody");
    body.replaceChildren();
    for (const cells of rows) {
      body.append(AF.el("tr", {}, cells.map((text, i) => AF.el(i === 0 ? "th" : "td", { text: text, attrs: i === 0 ? { scope: "row" } : {} }))));
    }
  }

  function showTables(results) {
    const n = (v) => AF.number(v);
    fillTable("servers-table", Object.keys(results.servers).sort().map((id) => {
      const s = results.servers[id];
      // A capacity schedule changes the cores: utilisation is read against their mean.
      const cores = s.mean_cores === null || s.mean_cores === undefined || s.mean_cores === s.cores
        ? AF.count(s.cores) : n(s.mean_cores) + " (mean)";
      return [id, AF.percent(s.cpu_utilisation), cores, n(s.ready_queue_mean), n(s.ready_queue_max),
        n(s.io_queue_mean), n(s.io_queue_max), AF.number(s.ram_mean_mb), AF.number(s.ram_peak_mb),
        AF.count(s.ram_mb),
        s.failures ? AF.percent(s.availability) + " (" + AF.count(s.failures) + ")" : "–"];
    }));
    const ms = (v) => (v === null || v === undefined ? "–" : AF.number(v * 1000));
    // Documents stored before replica groups existed have no such block.
    const groups = results.replica_groups || {};
    document.getElementById("replica-groups").hidden = !Object.keys(groups).length;
    fillTable("replica-groups-table", Object.keys(groups).map((id) => {
      const g = groups[id];
      // An autoscaled group: the range it spanned and its mean, not its max_replicas servers.
      const a = g.autoscaling;
      const count = a ? AF.count(a.replicas_min) + " to " + AF.count(a.replicas_max) + " (mean " + n(a.replicas_mean) + ", autoscaled)" : AF.count(g.replicas);
      return [id, count, n(g.throughput_rps), AF.percent(g.cpu_utilisation),
        n(g.ready_queue_mean), n(g.ready_queue_max), n(g.io_queue_mean), n(g.io_queue_max), ms(g.latency.p99)];
    }));
    const endpointRows = [];
    for (const id of Object.keys(results.servers).sort()) {
      const endpoints = results.servers[id].endpoints || {};
      for (const name of Object.keys(endpoints)) {
        const e = endpoints[name];
        endpointRows.push([id + " " + name, AF.count(e.count), ms(e.mean), ms(e.p50), ms(e.p95), ms(e.p99), ms(e.max)]);
      }
    }
    fillTable("endpoints-table", endpointRows);
    const pools = results.pools || {};
    document.getElementById("pools").hidden = !Object.keys(pools).length;
    fillTable("pools-table", Object.keys(pools).sort().map((id) => {
      const p = pools[id];
      return [id, AF.count(p.size), AF.percent(p.utilisation), AF.count(p.acquired), ms(p.wait_mean_s),
        n(p.waiting_mean), n(p.waiting_max)];
    }));
    const calls = results.calls || {};
    document.getElementById("calls").hidden = !Object.keys(calls).length;
    fillTable("calls-table", Object.keys(calls).map((id) => {
      const c = calls[id];
      return [id, c.target, AF.count(c.sent), AF.count(c.answered), AF.count(c.failed),
        ms(c.latency.mean), ms(c.latency.p99)];
    }));
    showBreakdown(results.breakdown || [], results.latency.mean);
    fillTable("edges-table", Object.keys(results.edges).sort().map((id) => {
      const e = results.edges[id];
      return [id, n(e.connections_mean), n(e.connections_max), AF.count(e.dropped)];
    }));
  }

  /* Colours of the breakdown's categories, as the dashboard image draws them. */
  const CATEGORY_COLOURS = {
    network: "#bab0ac", wait: "#e15759", cpu: "#4e79a7", io: "#59a14f",
    pool_wait: "#f28e2b", calls: "#b07aa1",
  };

  /* A bar per place (edges and servers, in the order requests meet them), its length the
   * milliseconds of the mean latency spent there against the largest place, stacked by
   * category; then every part in a table. */
  function showBreakdown(parts, mean) {
    const box = document.getElementById("breakdown");
    box.hidden = !parts.length;
    if (!parts.length) return;
    const places = new Map();
    for (const part of parts) {
      if (!places.has(part.place)) places.set(part.place, []);
      places.get(part.place).push(part);
    }
    const total = (list) => list.reduce((sum, part) => sum + part.mean_s, 0);
    const widest = Math.max(...Array.from(places.values(), total));
    const ms = (s) => AF.number(s * 1000) + " ms";
    document.getElementById("breakdown-total").textContent =
      "Mean latency " + ms(mean) + ": each bar is the time spent at one place, split by what it went on.";
    const rows = [];
    for (const [place, list] of places) {
      const segments = list.map((part) => {
        const segment = AF.el("span", {
          className: "segment",
          attrs: { "data-category": part.category, title: place + " " + part.category + ": " + ms(part.mean_s) },
        });
        segment.style.width = (100 * part.mean_s / widest) + "%";
        segment.style.background = CATEGORY_COLOURS[part.category];
        return segment;
      });
      rows.push(AF.el("div", { className: "breakdown-row", attrs: { "data-place": place } }, [
        AF.el("span", { className: "place", text: place }),
        AF.el("span", { className: "track" }, segments),
        AF.el("span", { className: "value", text: ms(total(list)) }),
      ]));
    }
    document.getElementById("breakdown-bars").replaceChildren(...rows);
    const used = new Set(parts.map((part) => part.category));
    document.getElementById("breakdown-legend").replaceChildren(
      ...Object.keys(CATEGORY_COLOURS).filter((c) => used.has(c)).map((category) => {
        const swatch = AF.el("span", { className: "swatch" });
        swatch.style.background = CATEGORY_COLOURS[category];
        return AF.el("li", {}, [swatch, AF.el("span", { text: category })]);
      })
    );
    fillTable("breakdown-table", parts.map((part) => [
      part.place, part.category, AF.number(part.mean_s * 1000), AF.percent(part.share),
    ]));
  }

  /* The kind of window each start mark opens, as the charts and the list colour it. */
  const EVENT_KINDS = {
    server_down: "outage",
    network_spike_start: "spike",
    server_slowdown_start: "slowdown",
    edge_slowdown_start: "slowdown",
  };

  /* What an event does to its target: "db down", "lb-srv +50 ms", "db x3", "db x2 cpu". */
  function eventEffect(ev) {
    if (ev.kind === "outage") return ev.target + " down";
    if (ev.kind === "slowdown") {
      const part = ev.appliesTo && ev.appliesTo !== "both" ? " " + ev.appliesTo : "";
      return ev.target + " x" + ev.factor + part;
    }
    return ev.target + " +" + AF.ms(ev.spikeS);
  }

  /* The injected events, as the windows the charts shade, the raw sample period and the
   * description. Without them the charts are still drawn, unshaded. */
  async function readScenario() {
    const answer = await AF.api("GET", AF.runUrl(runId) + "/scenario");
    if (!answer.ok) return;
    const description = document.getElementById("run-description");
    description.textContent = answer.data.description || "";
    description.hidden = !answer.data.description;
    samplePeriodS = answer.data.sim_settings.sample_period_s;
    events = (answer.data.events || []).map((ev) => ({
      id: ev.event_id,
      target: ev.target_id,
      kind: EVENT_KINDS[ev.start.kind] || "spike",
      start: ev.start.t_start,
      end: ev.end.t_end,
      spikeS: ev.start.spike_s,
      factor: ev.start.factor,
      appliesTo: ev.start.applies_to,
    }));
  }

  /* The servers' random failures, shaded like events but untagged. */
  function failureWindows(results) {
    const windows = [];
    for (const [server, stats] of Object.entries(results.servers || {})) {
      for (const [start, end] of stats.failure_windows || []) {
        windows.push({ id: server + " failed", target: server, kind: "failure", start: start, end: end });
      }
    }
    return windows;
  }

  function showEvents() {
    const list = document.getElementById("events-list");
    list.replaceChildren();
    for (const ev of events) {
      list.append(AF.el("li", { className: "event-" + ev.kind }, [
        AF.el("strong", { text: ev.id }),
        AF.el("span", { text: " " + eventEffect(ev) + ", " + AF.number(ev.start) + "–" + AF.number(ev.end) + " s" }),
      ]));
    }
    list.hidden = events.length === 0;
  }

  async function showResults() {
    const answer = await AF.api("GET", AF.runUrl(runId) + "/results?max_points=" + config.maxPoints);
    if (!answer.ok) {
      errorBox.textContent = "The results could not be read: " + AF.errorText(answer);
      errorBox.hidden = false;
      document.body.dataset.state = "error";
      return;
    }
    const results = answer.data;
    document.getElementById("results").hidden = false;
    document.getElementById("results-link").hidden = false;
    document.getElementById("dashboard-link").hidden = false;
    showStats(results);
    showTables(results);
    showEvents();
    window.AsyncFlowCharts.drawAll(document.getElementById("charts"), {
      id: runId,
      results: results,
      events: events.concat(failureWindows(results)),
      rawPeriod: samplePeriodS,
      metrics: config.metrics,
      palette: config.palette,
      plotUrl: plotUrl,
    });
    document.body.dataset.state = "ready";
  }

  readScenario().then(poll);
})();
