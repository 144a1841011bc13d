/* Helpers shared by the pages: the page's configuration, DOM building, API calls, formatting.
 *
 * Everything the pages show is put in the DOM as text (textContent, never
 * innerHTML), so names and messages coming from a scenario cannot inject markup.
 */
"use strict";

window.AsyncFlow = (function () {
  const FINAL = new Set(["succeeded", "failed", "cancelled"]);
  const KEY_STORAGE = "asyncflow.apiKey";

  /* The API key pasted in this tab, if the service wants one (kept for this tab only). */
  function apiKey() {
    try {
      return window.sessionStorage.getItem(KEY_STORAGE) || "";
    } catch (err) {
      return "";
    }
  }

  /* The header form where a key is pasted; an empty key forgets the one in use. */
  function wireKeyForm() {
    const form = document.getElementById("api-key-form");
    if (!form) return;
    const input = document.getElementById("api-key");
    input.placeholder = apiKey() ? "key in use; paste another" : "paste your key";
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const key = input.value.trim();
      if (key) window.sessionStorage.setItem(KEY_STORAGE, key);
      else window.sessionStorage.removeItem(KEY_STORAGE);
      window.location.reload();
    });
  }

  /* The JSON the server rendered into <script type="application/json" id="page-config">. */
  function pageConfig() {
    const node = document.getElementById("page-config");
    return node ? JSON.parse(node.textContent) : {};
  }

  /* An element with a class, a text and attributes; children appended in order. */
  function el(tag, options, children) {
    const node = document.createElement(tag);
    const opts = options || {};
    if (opts.className) node.className = opts.className;
    if (opts.text !== undefined && opts.text !== null) node.textContent = String(opts.text);
    for (const [name, value] of Object.entries(opts.attrs || {})) node.setAttribute(name, value);
    for (const child of children || []) node.append(child);
    return node;
  }

  /* Calls the API; resolves to {status, ok, data, headers} whatever the status. */
  async function api(method, url, body, contentType) {
    const init = { method: method, headers: { Accept: "application/json" } };
    const key = apiKey();
    if (key) init.headers["X-API-Key"] = key;
    if (body !== undefined) {
      init.body = body;
      init.headers["Content-Type"] = contentType;
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      return { status: 0, ok: false, data: { detail: "the service cannot be reached" }, headers: new Headers() };
    }
    let data = null;
    const type = response.headers.get("content-type") || "";
    if (type.includes("json")) {
      try {
        data = parseJson(await response.text());
      } catch (err) {
        data = null;
      }
    }
    if (data === null && !response.ok) data = { detail: response.status + " " + response.statusText };
    return { status: response.status, ok: response.ok, data: data, headers: response.headers };
  }

  /* Seeds go up to 2^63, past the 2^53 up to which a JS number holds every integer:
   * read them as strings so that the seed shown is the one that replays the run. */
  function parseJson(text) {
    return JSON.parse(text.replace(/("seed"\s*:\s*)(\d+)/g, '$1"$2"'));
  }

  /* The sentence of an error answer: `detail` when it is a string. */
  function errorText(answer) {
    const detail = answer.data && answer.data.detail;
    if (typeof detail === "string") return detail;
    return "request failed with status " + answer.status;
  }

  /* A dotted path as text nodes with line-break opportunities after its dots. */
  function breakable(path) {
    const parts = [];
    path.split(".").forEach(function (part, i, all) {
      parts.push(document.createTextNode(i < all.length - 1 ? part + "." : part));
      if (i < all.length - 1) parts.push(document.createElement("wbr"));
    });
    return parts;
  }

  /* Replaces the children of `list` with one item per located problem of a 422 answer. */
  /* Problems, or with kind "warning" warnings: both have a path and a message. */
  function showProblems(list, items, kind) {
    list.replaceChildren();
    for (const item of items) {
      const path = item.path || (item.loc || []).join(".") || "(scenario)";
      list.append(
        el("li", { className: kind || "problem", attrs: { "data-path": path } }, [
          el("code", { className: "path" }, breakable(path)),
          el("span", { className: "message", text: item.msg }),
        ])
      );
    }
    list.hidden = items.length === 0;
  }

  /* A number to `significant` digits (3 by default), grouped, never in exponent form:
   * 0.000123 reads "0.000123" (no small value rounds to 0), 12.345 reads "12.3", and a
   * number with more integer digits than that keeps them all (12,345.6 reads "12,346"). */
  function number(value, significant) {
    if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
    const v = Number(value);
    const digits = significant || 3;
    if (v === 0 || Math.abs(v) >= Math.pow(10, digits)) {
      return v.toLocaleString(undefined, { maximumFractionDigits: 0 });
    }
    return v.toLocaleString(undefined, { maximumSignificantDigits: digits });
  }

  /* A whole count, grouped: 12,345. */
  function count(value) {
    if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
    return Number(value).toLocaleString(undefined, { maximumFractionDigits: 0 });
  }

  function ms(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    return number(seconds * 1000) + " ms";
  }

  function percent(fraction) {
    if (fraction === null || fraction === undefined) return "–";
    return number(fraction * 100) + " %";
  }

  function clock(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    const today = new Date();
    const sameDay = date.toDateString() === today.toDateString();
    return sameDay ? date.toLocaleTimeString() : date.toLocaleString();
  }

  function duration(fromIso, toIso) {
    if (!fromIso) return "–";
    const end = toIso ? new Date(toIso) : new Date();
    const seconds = Math.max(0, (end - new Date(fromIso)) / 1000);
    if (seconds < 60) return number(seconds, 2) + " s";
    const minutes = Math.floor(seconds / 60);
    return minutes + " min " + Math.round(seconds - minutes * 60) + " s";
  }

  /* Shows a run's status as a coloured badge. */
  function setBadge(node, status) {
    node.textContent = status;
    node.className = "badge status-" + status;
  }

  /* Fills a .progress bar to `fraction` (0..1); a finished run that did not succeed stays put. */
  function setProgress(node, fraction, status) {
    const value = Math.max(0, Math.min(1, fraction || 0));
    const bar = node.querySelector(".bar");
    bar.style.width = (value * 100).toFixed(1) + "%";
    node.className = "progress status-" + status;
    node.setAttribute("aria-valuenow", (value * 100).toFixed(0));
    node.title = (value * 100).toFixed(0) + " % of the simulated horizon";
  }

  /* The media type the API expects for a scenario text: JSON if it looks like JSON. */
  function scenarioType(text) {
    const start = text.trimStart();
    return start.startsWith("{") || start.startsWith("[") ? "application/json" : "application/yaml";
  }

  function runUrl(id) {
    return "/api/v1/simulations/" + encodeURIComponent(id);
  }

  function runPage(id) {
    return "/runs/" + encodeURIComponent(id);
  }

  wireKeyForm();

  return {
    FINAL: FINAL,
    pageConfig: pageConfig,
    el: el,
    api: api,
    errorText: errorText,
    showProblems: showProblems,
    number: number,
    count: count,
    ms: ms,
    percent: percent,
    clock: clock,
    duration: duration,
    setBadge: setBadge,
    setProgress: setProgress,
    scenarioType: scenarioType,
    runUrl: runUrl,
    runPage: runPage,
  };
})();
