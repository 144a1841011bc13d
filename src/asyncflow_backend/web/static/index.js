/* The scenario editor (examples, upload, validate, submit) and the live list of runs. */
"use strict";

(function () {
  const AF = window.AsyncFlow;
  const config = AF.pageConfig();
  const examples = config.examples || {};
  const pollMs = config.pollMs || 1000;

  const editor = document.getElementById("scenario");
  const form = document.getElementById("scenario-form");
  const exampleSelect = document.getElementById("example");
  const exampleDescription = document.getElementById("example-description");
  const upload = document.getElementById("upload");
  const validateButton = document.getElementById("validate");
  const submitButton = document.getElementById("submit");
  const seedInput = document.getElementById("seed");
  const formatNote = document.getElementById("format");
  const checkStatus = document.getElementById("check-status");
  const checkSummary = document.getElementById("check-summary");
  const problems = document.getElementById("problems");
  const warnings = document.getElementById("warnings");
  // The name a run gets when its scenario has none: the example's or the uploaded file's,
  // and the text that file put in the editor.
  let fileName = exampleSelect.value || "";
  let fileText = editor.value;

  /* The file's name while the editor still holds mostly that file (at least half of its
   * lines): a scenario pasted over an example is not named after the example. */
  function defaultName() {
    const lines = fileText.split("\n").map((l) => l.trim()).filter((l) => l);
    if (!fileName || !lines.length) return "";
    const present = new Set(editor.value.split("\n").map((l) => l.trim()));
    const kept = lines.filter((l) => present.has(l)).length;
    return kept * 2 >= lines.length ? stem(fileName) : "";
  }

  /* `ram_pressure` for `ram_pressure.yml`: the default name of a run. */
  function stem(name) {
    return name.replace(/^.*[\\/]/, "").replace(/\.(ya?ml|json)$/i, "").trim();
  }

  /* ---- editor ---- */

  function showFormat() {
    formatNote.textContent = AF.scenarioType(editor.value) === "application/json" ? "JSON" : "YAML";
  }

  function resetCheck(message) {
    checkStatus.textContent = message;
    checkStatus.className = "muted";
    checkSummary.hidden = true;
    problems.hidden = true;
    problems.replaceChildren();
    warnings.hidden = true;
    warnings.replaceChildren();
    editor.classList.remove("invalid");
  }

  exampleSelect.addEventListener("change", function () {
    const example = examples[exampleSelect.value];
    if (!example) return;
    editor.value = example.text;
    fileName = exampleSelect.value;
    fileText = example.text;
    exampleDescription.textContent = example.description;
    showFormat();
    resetCheck("Example loaded; validate it or run it.");
  });

  upload.addEventListener("change", async function () {
    const file = upload.files && upload.files[0];
    if (!file) return;
    editor.value = await file.text();
    fileName = file.name;
    fileText = editor.value;
    exampleDescription.textContent = "Uploaded " + file.name + ".";
    upload.value = "";
    showFormat();
    resetCheck("File loaded; validate it or run it.");
  });

  editor.addEventListener("input", function () {
    showFormat();
    if (!checkStatus.classList.contains("muted")) resetCheck("Edited since the last check.");
  });

  /* ---- validate and submit ---- */

  function busy(on) {
    validateButton.disabled = on;
    submitButton.disabled = on;
  }

  function showInvalid(answer) {
    const items = Array.isArray(answer.data && answer.data.detail) ? answer.data.detail : [];
    checkSummary.hidden = true;
    checkStatus.className = "error";
    if (items.length > 0) {
      checkStatus.textContent = answer.data.message || items.length + " problem(s)";
      AF.showProblems(problems, items);
      editor.classList.add("invalid");
    } else {
      checkStatus.textContent = AF.errorText(answer);
      problems.hidden = true;
    }
  }

  function showSummary(summary, warned) {
    checkStatus.className = "ok";
    checkStatus.textContent = "Valid: the service would accept this scenario.";
    if (warned.length > 0) {
      checkStatus.textContent +=
        " " + warned.length + (warned.length === 1 ? " warning" : " warnings") +
        ": legal, runs as written, but probably not what you meant.";
    }
    AF.showProblems(warnings, warned, "warning");
    problems.hidden = true;
    editor.classList.remove("invalid");
    const facts = [
      ["servers", summary.servers],
      ["endpoints", summary.endpoints],
      ["edges", summary.edges],
      ["load balancers", summary.load_balancers],
      ["events", summary.events],
      ["horizon", AF.number(summary.horizon_s) + " s"],
      ["sampled every", AF.number(summary.sample_period_s) + " s"],
      ["requests expected", "~" + AF.count(summary.expected_requests)],
      ["seed", summary.seed === null ? "drawn per run" : summary.seed],
    ];
    checkSummary.replaceChildren();
    for (const [name, value] of facts) {
      checkSummary.append(AF.el("dt", { text: name }), AF.el("dd", { text: value }));
    }
    checkSummary.hidden = false;
  }

  validateButton.addEventListener("click", async function () {
    busy(true);
    resetCheck("Checking…");
    const answer = await AF.api(
      "POST", "/api/v1/scenarios/validate", editor.value, AF.scenarioType(editor.value)
    );
    busy(false);
    if (answer.ok) showSummary(answer.data.summary, answer.data.warnings || []);
    else showInvalid(answer);
  });

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    busy(true);
    resetCheck("Submitting…");
    const query = new URLSearchParams();
    if (seedInput.value.trim() !== "") query.set("seed", seedInput.value.trim());
    if (defaultName()) query.set("default_name", defaultName());
    const url = "/api/v1/simulations" + (query.toString() ? "?" + query.toString() : "");
    const answer = await AF.api("POST", url, editor.value, AF.scenarioType(editor.value));
    if (answer.status === 202 && answer.data && answer.data.id) {
      checkStatus.className = "ok";
      checkStatus.textContent = "Accepted; opening the run…";
      window.location.assign(AF.runPage(answer.data.id));
      return;
    }
    busy(false);
    showInvalid(answer);
  });

  /* ---- runs list ---- */

  const runsBody = document.getElementById("runs-body");
  const runsEmpty = document.getElementById("runs-empty");
  const runsCount = document.getElementById("runs-count");
  const runsError = document.getElementById("runs-error");
  const statusFilter = document.getElementById("status-filter");
  const rows = new Map();
  const PAGE = 25;

  function newRow(run) {
    const link = AF.el("a", { text: run.id.slice(0, 8), attrs: { href: AF.runPage(run.id), title: run.id } });
    const bar = AF.el("div", { className: "progress", attrs: { role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" } }, [
      AF.el("div", { className: "bar" }),
    ]);
    const cells = {
      id: AF.el("td", { className: "run-id" }, [AF.el("code", {}, [link])]),
      name: AF.el("td", { className: "run-name" }),
      status: AF.el("span", { className: "badge" }),
      bar: bar,
      percent: AF.el("span", { className: "percent" }),
      created: AF.el("td"),
      duration: AF.el("td"),
      seed: AF.el("td", { className: "seed" }),
    };
    const row = AF.el("tr", { attrs: { "data-run-id": run.id } }, [
      cells.id,
      cells.name,
      AF.el("td", {}, [cells.status]),
      AF.el("td", { className: "progress-col" }, [cells.bar, cells.percent]),
      cells.created,
      cells.duration,
      cells.seed,
    ]);
    return { row: row, cells: cells };
  }

  function updateRow(entry, run) {
    const c = entry.cells;
    c.name.textContent = run.name || "–";
    c.name.title = run.name || "";
    AF.setBadge(c.status, run.status);
    if (run.error) c.status.title = run.error;
    const done = run.status === "succeeded" ? 1 : run.progress;
    AF.setProgress(c.bar, done, run.status);
    c.percent.textContent = Math.round(done * 100) + " %";
    c.created.textContent = AF.clock(run.created_at);
    c.duration.textContent = run.started_at ? AF.duration(run.started_at, run.finished_at) : "–";
    c.seed.textContent = run.seed === null ? "–" : String(run.seed);
    entry.row.dataset.status = run.status;
  }

  async function refreshRuns() {
    let url = "/api/v1/simulations?limit=" + PAGE;
    if (statusFilter.value) url += "&status=" + encodeURIComponent(statusFilter.value);
    const answer = await AF.api("GET", url);
    if (!answer.ok) {
      runsError.textContent = "Runs could not be listed: " + AF.errorText(answer);
      runsError.hidden = false;
      return;
    }
    runsError.hidden = true;
    const page = answer.data;
    const seen = new Set();
    page.items.forEach(function (run, index) {
      let entry = rows.get(run.id);
      if (!entry) {
        entry = newRow(run);
        rows.set(run.id, entry);
      }
      updateRow(entry, run);
      seen.add(run.id);
      if (runsBody.children[index] !== entry.row) runsBody.insertBefore(entry.row, runsBody.children[index] || null);
    });
    for (const [id, entry] of rows) {
      if (!seen.has(id)) {
        entry.row.remove();
        rows.delete(id);
      }
    }
    runsEmpty.hidden = page.items.length > 0;
    runsCount.textContent = page.total > page.items.length
      ? "newest " + page.items.length + " of " + page.total
      : page.total + " run" + (page.total === 1 ? "" : "s");
  }

  async function pollRuns() {
    if (!document.hidden) await refreshRuns();
    window.setTimeout(pollRuns, pollMs);
  }

  /* ---- edit and run again: `/?from=<run id>&seed=kept|fresh` ---- */

  /* Opens the scenario of a run in the editor, with the run's seed or none (a fresh one). */
  async function openRun(params) {
    const id = params.get("from");
    const answer = await AF.api("GET", AF.runUrl(id) + "/scenario");
    if (!answer.ok) {
      resetCheck("The scenario of run " + id + " could not be read: " + AF.errorText(answer));
      checkStatus.className = "error";
      return;
    }
    const stored = answer.data;
    const kept = params.get("seed") === "kept";
    const run = kept ? await readRun(id) : null;
    // The sections in the order the docs give them (a database may store keys sorted);
    // unset fields and the seed (the field below says which one runs) left out.
    const order = ["name", "description", "rqs_input", "topology_graph", "sim_settings", "events"];
    const scenario = {};
    for (const key of order.concat(Object.keys(stored))) {
      if (key !== "seed" && stored[key] !== null && stored[key] !== undefined) scenario[key] = stored[key];
    }
    editor.value = JSON.stringify(scenario, null, 2);
    seedInput.value = run && run.ok && run.data.seed !== null ? String(run.data.seed) : "";
    fileName = "";
    exampleDescription.textContent = "The scenario of run " + id.slice(0, 8)
      + (scenario.name ? " (" + scenario.name + ")" : "") + ", "
      + (kept ? "with its seed: the same run again unless you edit it." : "with a fresh seed.");
    showFormat();
    if (kept && !(run && run.ok)) {
      // Never fall back to a fresh seed without saying so: the user asked for the same run.
      resetCheck("The seed of run " + id + " could not be read (" + AF.errorText(run)
        + "): the scenario is loaded without it.");
      checkStatus.className = "error";
      return;
    }
    resetCheck("Scenario loaded; edit it, then validate or run it.");
  }

  /* A run, read again while the service answers that it is briefly unavailable (503, a
     busy database) or cannot be reached. */
  async function readRun(id) {
    let answer = await AF.api("GET", AF.runUrl(id));
    for (let attempt = 1; attempt < 5 && (answer.status === 503 || answer.status === 0); attempt++) {
      await new Promise(function (resolve) { setTimeout(resolve, 400 * attempt); });
      answer = await AF.api("GET", AF.runUrl(id));
    }
    return answer;
  }

  statusFilter.addEventListener("change", refreshRuns);
  const params = new URLSearchParams(window.location.search);
  if (params.get("from")) openRun(params);
  showFormat();
  pollRuns();
})();
