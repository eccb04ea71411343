"use strict";
// Fetches overview.json (relative, so the page works behind a path prefix) and redraws.
// Every value goes into the page as text (textContent), never as markup.
(function () {
  const REFRESH_S = 10;
  const SVG = "http://www.w3.org/2000/svg";
  const CHART = { width: 600, height: 130, top: 14, bottom: 16 };
  const byId = (id) => document.getElementById(id);

  function setText(id, value) {
    byId(id).textContent = value === null || value === undefined ? "–" : String(value);
  }

  function cell(tag, text, className) {
    const node = document.createElement(tag);
    node.textContent = text === null || text === undefined ? "–" : String(text);
    if (className) node.className = className;
    return node;
  }

  function fillRows(tbodyParent, rows, emptyText, columns) {
    const tbody = byId(tbodyParent).querySelector("tbody");
    tbody.replaceChildren();
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      const td = cell("td", emptyText, "muted");
      td.colSpan = columns;
      tr.append(td);
      tbody.append(tr);
      return tbody;
    }
    for (const row of rows) tbody.append(row);
    return tbody;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "none due";
    const s = Math.round(seconds);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function renderOverall(data) {
    const badge = byId("overall");
    const reasons = [].concat(data.health.reasons, data.ready.reasons);
    if (data.health.ok && data.ready.ok) {
      badge.textContent = "ready";
      badge.className = "badge ok";
    } else {
      badge.textContent = data.health.ok ? "not ready" : "unhealthy";
      badge.className = "badge bad";
    }
    const problem = byId("problem");
    const text = reasons.concat(data.queueError ? [data.queueError] : []).join("; ");
    problem.textContent = text;
    problem.hidden = text === "";
  }

  function renderQueue(queue) {
    const status = queue ? queue.byStatus : {};
    const value = (key) => (queue ? queue[key] : null);
    setText("queue-total", value("total"));
    setText("queue-queued", queue ? status.queued : null);
    setText("queue-due", value("due"));
    setText("queue-scheduled-later", value("scheduledLater"));
    setText("queue-waiting", value("waitingForModel"));
    setText("queue-stranded", value("stranded"));
    setText("queue-processing", queue ? status.processing : null);
    setText("queue-completed", queue ? status.completed : null);
    setText("queue-failed", queue ? status.failed : null);
    const oldest = byId("queue-oldest-due");
    oldest.textContent = queue ? duration(queue.oldestDueAgeSeconds) : "–";
    oldest.dataset.seconds = queue && queue.oldestDueAgeSeconds !== null
      ? String(queue.oldestDueAgeSeconds) : "";
  }

  function renderModels(models) {
    const rows = Object.keys(models).sort().flatMap((name) => {
      const model = models[name];
      const tr = document.createElement("tr");
      tr.dataset.model = name;
      const stateCell = document.createElement("td");
      const state = model.up === null ? "unknown" : model.up ? "up" : "down";
      stateCell.append(cell("span", state, "state " + state));
      const total = (model.current || 0) + (model.outdated || 0) + (model.missing || 0);
      const coverage = model.current === null ? null
        : total === 0 ? "–" : (100 * model.current / total).toFixed(1) + " %";
      tr.append(
        cell("td", name, "name"), stateCell, cell("td", model.version, "version"),
        cell("td", model.current, "num current"), cell("td", model.outdated, "num outdated"),
        cell("td", model.missing, "num missing"), cell("td", coverage, "num coverage"),
        cell("td", model.waiting, "num waiting"),
      );
      if (!model.problem) return [tr];
      const problem = document.createElement("tr");
      problem.dataset.problemOf = name;
      const why = cell("td", model.problem, "reason problem");
      why.colSpan = 8;
      problem.append(why);
      return [tr, problem];
    });
    fillRows("models", rows, "no model enabled", 8);
  }

  function svgNode(tag, attributes, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderThroughput(throughput) {
    const completed = throughput.completed;
    const failed = throughput.failed;
    const sum = (values) => values.reduce((a, b) => a + b, 0);
    setText("throughput-completed", sum(completed));
    setText("throughput-failed", sum(failed));
    setText("throughput-last-minute", completed.length > 1 ? completed[completed.length - 2] : 0);

    const chart = byId("throughput-chart");
    chart.replaceChildren();
    const peak = Math.max(1, ...completed.map((c, i) => c + failed[i]));
    const plot = CHART.height - CHART.top - CHART.bottom;
    const step = CHART.width / completed.length;
    completed.forEach((count, i) => {
      const x = (i * step).toFixed(2);
      const width = Math.max(step - 1, 1).toFixed(2);
      const okHeight = (plot * count) / peak;
      const badHeight = (plot * failed[i]) / peak;
      const base = CHART.height - CHART.bottom;
      const minutesAgo = completed.length - 1 - i;
      const bar = svgNode("rect", {
        class: "bar-completed", x: x, width: width, y: (base - okHeight).toFixed(2),
        height: okHeight.toFixed(2), "data-minutes-ago": minutesAgo, "data-count": count,
      });
      bar.append(svgNode("title", {}, count + " completed, " + failed[i] + " failed, "
        + (minutesAgo === 0 ? "this minute" : minutesAgo + " min ago")));
      chart.append(bar);
      if (failed[i] > 0) {
        chart.append(svgNode("rect", {
          class: "bar-failed", x: x, width: width, y: (base - okHeight - badHeight).toFixed(2),
          height: badHeight.toFixed(2), "data-minutes-ago": minutesAgo, "data-count": failed[i],
        }));
      }
    });
    const minutes = completed.length * throughput.bucketSeconds / 60;
    chart.append(svgNode("text", { x: 2, y: 11 }, "peak " + peak + " / min"));
    chart.append(svgNode("text", { x: 2, y: CHART.height - 3 }, minutes + " min ago"));
    chart.append(svgNode("text", { x: CHART.width - 2, y: CHART.height - 3, "text-anchor": "end" },
      "now"));
  }

  function renderFailures(queue) {
    const groups = queue ? queue.failedByError : [];
    fillRows("failures", groups.map((group) => {
      const tr = document.createElement("tr");
      tr.append(cell("td", group.error === null ? "(no reason recorded)" : group.error, "reason"),
        cell("td", group.count, "num count"));
      return tr;
    }), "no failed items", 2);
    const recent = (queue ? queue.recentItems : []).filter((item) => item.errorMessage);
    fillRows("recent-errors", recent.map((item) => {
      const tr = document.createElement("tr");
      tr.dataset.id = String(item.id);
      tr.append(
        cell("td", item.id, "num"), cell("td", item.contentType + " " + item.contentId),
        cell("td", item.status, "status"), cell("td", item.retryCount, "num"),
        cell("td", item.errorMessage, "reason"),
        cell("td", item.updatedAt ? new Date(item.updatedAt).toLocaleString() : null),
      );
      return tr;
    }), "none among the most recently updated items", 6);
  }

  function render(data) {
    renderOverall(data);
    renderQueue(data.queue);
    renderModels(data.models);
    renderThroughput(data.throughput);
    renderFailures(data.queue);
    setText("updated", "updated " + new Date(data.generatedAt).toLocaleTimeString());
    document.body.dataset.rendered = data.generatedAt;
  }

  async function refresh() {
    try {
      const response = await fetch("overview.json", { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(await response.json());
    } catch (error) {
      const badge = byId("overall");
      badge.textContent = "unreachable";
      badge.className = "badge bad";
      const problem = byId("problem");
      problem.textContent = "cannot read overview.json: " + error.message;
      problem.hidden = false;
    }
  }

  setText("refresh-seconds", REFRESH_S);
  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_S * 1000);
})();
