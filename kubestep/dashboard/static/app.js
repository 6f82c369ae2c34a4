// kubestep dashboard: the fleet of every target (management service), a cluster's detail with
// its operations' live step view, scheduled upgrades and events. Plain DOM, no framework, no
// build step. Every request goes to this page's own server, which signs it for the target's API.

const MAX_BACKOFF_SECONDS = 30;
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]);
const ACTION_HEADER = "X-Kubestep-Dashboard";
const SESSION_HEADER = "X-Kubestep-Session";
const SESSION_KEY = "kubestep-dashboard-session";

// This run's session token. The CLI opens the page with it in the fragment (#token=...), which
// the browser never sends anywhere; it moves to this origin's sessionStorage (this host AND port,
// this tab: no page of another server on 127.0.0.1 can read it, unlike a cookie) and leaves the
// address bar. Every API call carries it in a header.
const session = (() => {
  const given = /^#token=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (given) {
    sessionStorage.setItem(SESSION_KEY, given[1]);
    history.replaceState(null, "", `${location.pathname}#/`);
    return given[1];
  }
  return sessionStorage.getItem(SESSION_KEY);
})();

const state = {
  targets: [],
  pollSeconds: 2,
  generation: 0, // bumped on every navigation: a stale poll loop stops itself
  timer: null,
  phases: new Map(), // "target/cluster" -> phase last seen (announce changes)
  operations: new Map(), // operation id -> status last seen
  steps: new Map(), // "target/operation" -> {items, next, status, final}
  versions: new Map(), // target -> GET /v1/version answer
};

class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ------------------------------------------------------------------ DOM helpers

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

// Replace a container's content only when its data changed, keeping keyboard focus on the
// element with the same data-key (a poll must never throw a keyboard user back to the top).
function update(container, signature, build) {
  if (container.dataset.signature === signature) return false;
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : undefined;
  container.replaceChildren(...[build()].flat());
  container.dataset.signature = signature;
  if (key) {
    const again = [...container.querySelectorAll("[data-key]")].find((el) => el.dataset.key === key);
    if (again) again.focus();
  }
  return true;
}

// A polite live region: each message is added as its own line (one refresh may both make a
// cluster DEGRADED and end its operation: neither hides the other); the last few are kept.
function announce(text) {
  const region = document.getElementById("announcer");
  region.append(h("p", {}, text));
  while (region.childElementCount > 3) region.firstElementChild.remove();
}

function phaseBadge(phase) {
  const value = phase || "UNKNOWN";
  return h("span", { class: `badge phase-${value.toLowerCase()}` }, value);
}

function statusBadge(status) {
  const value = status || "UNKNOWN";
  return h("span", { class: `badge status-${value.toLowerCase()}` }, value);
}

function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function timeElement(iso) {
  return iso ? h("time", { datetime: iso }, when(iso)) : "—";
}

function seconds(value) {
  if (value === null || value === undefined) return "";
  return value < 60 ? `${value.toFixed(1)} s` : `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
}

function link(href, text, key) {
  return h("a", { href, "data-key": key }, text);
}

function clusterHref(target, cluster, operation) {
  const base = `#/t/${encodeURIComponent(target)}/c/${encodeURIComponent(cluster)}`;
  return operation ? `${base}/op/${encodeURIComponent(operation)}` : base;
}

function message(error) {
  if (error instanceof ApiFailure) return `${error.message} (${error.code}${error.status ? `, HTTP ${error.status}` : ""})`;
  return String(error && error.message ? error.message : error);
}

function errorNote(error, what) {
  return h("p", { class: "error-note", role: "alert" }, `Cannot load ${what}: ${message(error)}`);
}

// ------------------------------------------------------------------ API

async function api(target, path, { method = "GET" } = {}) {
  const headers = { Accept: "application/json", [SESSION_HEADER]: session || "" };
  if (method !== "GET") headers[ACTION_HEADER] = "1";
  const response = await fetch(`/api/${encodeURIComponent(target)}/v1/${path}`, {
    method,
    headers,
    credentials: "omit",
    cache: "no-store",
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = body.error || {};
    throw new ApiFailure(response.status, error.code || `HTTP${response.status}`, error.message || response.statusText);
  }
  return body;
}

// A cluster's one-off upgrade schedules, or null from a management service older than them: its
// API sends every /v1 path to the api function, whose router answers 404 for a route it lacks.
async function schedulesOf(target, cluster) {
  try {
    return await api(target, `schedules?cluster=${encodeURIComponent(cluster)}`);
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
}

async function loadTargets() {
  const response = await fetch("/api/targets", {
    headers: { Accept: "application/json", [SESSION_HEADER]: session || "" },
    credentials: "omit",
    cache: "no-store",
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = body.error || {};
    throw new ApiFailure(response.status, error.code || `HTTP${response.status}`, error.message || "");
  }
  state.targets = body.targets;
  state.pollSeconds = body.pollSeconds || 2;
}

// ------------------------------------------------------------------ polling with backoff

function startPolling(refresh) {
  const generation = ++state.generation;
  clearTimeout(state.timer);
  let delay = state.pollSeconds;
  const indicator = document.getElementById("refresh-state");
  const run = async () => {
    if (generation !== state.generation) return;
    try {
      await refresh(generation);
      delay = state.pollSeconds;
      indicator.textContent = `Updated ${new Date().toLocaleTimeString()}, every ${state.pollSeconds} s`;
    } catch (error) {
      delay = Math.min(delay * 2, MAX_BACKOFF_SECONDS);
      indicator.textContent = `Retrying in ${delay} s: ${message(error)}`;
    }
    if (generation === state.generation) state.timer = setTimeout(run, delay * 1000);
  };
  run();
}

// ------------------------------------------------------------------ fleet view

function replicaHealth(replica) {
  const report = replica.bootstrap;
  if (report === "ok") return { text: "healthy", css: "ok" };
  if (report && report.startsWith("failed")) return { text: `unhealthy (${report})`, css: "bad" };
  return { text: "pending", css: "pending" };
}

function replicasSummary(cluster) {
  const replicas = (cluster.status.controlPlane || {}).replicas || [];
  const healthy = replicas.filter((r) => r.bootstrap === "ok").length;
  return h(
    "div",
    {},
    h("span", {}, `${healthy}/${replicas.length} healthy`),
    replicas.length
      ? h(
          "ul",
          { class: "compact" },
          replicas.map((replica) => {
            const health = replicaHealth(replica);
            return h("li", {}, `${replica.zone || `replica ${replica.index}`}: `, h("span", { class: `health ${health.css}` }, health.text));
          }),
        )
      : null,
  );
}

function nodePoolsSummary(cluster) {
  const pools = cluster.status.nodePools || [];
  if (!pools.length) return "none";
  return h(
    "ul",
    { class: "compact" },
    pools.map((pool) => {
      const spec = pool.spec || {};
      const ready = pool.status.readyNodes ?? 0;
      return h("li", {}, `${pool.metadata.name}: ${ready} ready (${spec.minNodeCount}–${spec.maxNodeCount})`);
    }),
  );
}

function noticePhase(target, cluster, name, phase) {
  const key = `${target}/${name}`;
  const before = state.phases.get(key);
  state.phases.set(key, phase);
  if (before !== undefined && before !== phase) announce(`Cluster ${name} (${target}) is now ${phase}`);
}

function fleetTable(target, clusters) {
  if (!clusters.length) return h("p", {}, "No clusters.");
  return h(
    "table",
    { class: "data" },
    h("caption", {}, `Clusters of ${target}`),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Cluster", "Phase", "Version", "Endpoint", "Control plane", "Node pools", "Operation"].map((label) =>
          h("th", { scope: "col" }, label),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      clusters.map((cluster) => {
        const name = cluster.metadata.name;
        const status = cluster.status;
        return h(
          "tr",
          { "data-cluster": name },
          h("th", { scope: "row" }, link(clusterHref(target, name), name, `cluster:${target}/${name}`)),
          h("td", {}, phaseBadge(status.phase)),
          h("td", {}, status.version || cluster.spec.controlPlane?.version || "—"),
          h("td", {}, status.endpoint ? h("code", {}, status.endpoint) : "—"),
          h("td", {}, replicasSummary(cluster)),
          h("td", {}, nodePoolsSummary(cluster)),
          h("td", {}, status.currentOperation ? link(clusterHref(target, name, status.currentOperation), status.currentOperation, `op:${status.currentOperation}`) : "—"),
        );
      }),
    ),
  );
}

async function listClusters(target) {
  const clusters = [];
  let token = null;
  do {
    const query = token ? `?limit=100&nextToken=${encodeURIComponent(token)}` : "?limit=100";
    const page = await api(target, `clusters${query}`);
    clusters.push(...page.items);
    token = page.nextToken;
  } while (token);
  return clusters;
}

function renderFleet() {
  setTitle("Fleet", [{ text: "Fleet" }]);
  const view = document.getElementById("view");
  if (!state.targets.length) {
    view.replaceChildren(h("p", {}, "No management service configured: see `kubestep config set-context`."));
    return;
  }
  view.replaceChildren(
    ...state.targets.map((target, index) =>
      h(
        "section",
        { class: "target", "aria-labelledby": `target-${index}`, "data-target": target.name },
        h("h2", { id: `target-${index}` }, target.name),
        h("p", { class: "meta", id: `target-${index}-meta` }, target.endpoint || ""),
        h("div", { id: `target-${index}-body` }, h("p", {}, "Loading…")),
      ),
    ),
  );
  startPolling(async () => {
    let failures = 0;
    await Promise.all(
      state.targets.map(async (target, index) => {
        const body = document.getElementById(`target-${index}-body`);
        const meta = document.getElementById(`target-${index}-meta`);
        if (!body) return;
        if (target.error) {
          update(body, `error:${target.error}`, () => h("p", { class: "error-note" }, `Unavailable: ${target.error}`));
          return;
        }
        try {
          if (!state.versions.has(target.name)) state.versions.set(target.name, await api(target.name, "version"));
          const version = state.versions.get(target.name);
          const scale = version.timeScale && version.timeScale !== 1 ? `, time scale ${version.timeScale}` : "";
          meta.textContent = `management service ${version.managementService} · ${version.region} · kubestep ${version.kubestep}${scale} · ${target.endpoint || ""}`;
          const clusters = await listClusters(target.name);
          for (const cluster of clusters) noticePhase(target.name, cluster, cluster.metadata.name, cluster.status.phase);
          update(body, JSON.stringify(clusters), () => fleetTable(target.name, clusters));
        } catch (error) {
          failures += 1;
          update(body, `error:${message(error)}`, () => errorNote(error, `the clusters of ${target.name}`));
        }
      }),
    );
    if (failures && failures === state.targets.length) throw new Error("no target answered");
  });
}

// ------------------------------------------------------------------ cluster detail

function definitionList(entries) {
  return h(
    "dl",
    { class: "facts" },
    entries.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value ?? "—")]),
  );
}

function clusterFacts(target, cluster) {
  const status = cluster.status;
  const lastError = status.lastError;
  return definitionList([
    ["Management service", target],
    ["Phase", phaseBadge(status.phase)],
    ["Version", status.version || cluster.spec.controlPlane?.version],
    ["Endpoint", status.endpoint ? h("code", {}, status.endpoint) : "—"],
    ["UID", status.uid || cluster.metadata.uid],
    ["Created", timeElement(cluster.metadata.createdAt)],
    ["Current operation", status.currentOperation ? link(clusterHref(target, cluster.metadata.name, status.currentOperation), status.currentOperation, `op:${status.currentOperation}`) : "none"],
    ["Last error", lastError ? `${lastError.error || ""}: ${lastError.message || ""}` : "none"],
    ...(status.drift && Object.keys(status.drift).length
      ? [["Drift", Object.entries(status.drift).map(([k, v]) => `${k}: ${v}`).join("; ")]]
      : []),
  ]);
}

function replicasTable(cluster) {
  const replicas = (cluster.status.controlPlane || {}).replicas || [];
  if (!replicas.length) return h("p", {}, "No replicas yet.");
  return h(
    "table",
    { class: "data" },
    h("caption", {}, "Control-plane replicas by zone"),
    h("thead", {}, h("tr", {}, ["Replica", "Zone", "Health", "Instance", "etcd volume", "Auto Scaling group"].map((l) => h("th", { scope: "col" }, l)))),
    h(
      "tbody",
      {},
      replicas.map((replica) => {
        const health = replicaHealth(replica);
        return h(
          "tr",
          { "data-replica": replica.index },
          h("th", { scope: "row" }, `replica ${replica.index}`),
          h("td", {}, replica.zone || "—"),
          h("td", {}, h("span", { class: `health ${health.css}` }, health.text)),
          h("td", {}, replica.instanceId ? h("code", {}, replica.instanceId) : "—"),
          h("td", {}, replica.etcdVolumeId ? h("code", {}, replica.etcdVolumeId) : "—"),
          h("td", {}, replica.autoScalingGroup ? h("code", {}, replica.autoScalingGroup) : "—"),
        );
      }),
    ),
  );
}

function nodePoolsTable(cluster) {
  const pools = cluster.status.nodePools || [];
  if (!pools.length) return h("p", {}, "No node pools.");
  return h(
    "table",
    { class: "data" },
    h("caption", {}, "Node pools"),
    h("thead", {}, h("tr", {}, ["Node pool", "Phase", "Version", "Min", "Max", "Ready", "Instance type", "Zone"].map((l) => h("th", { scope: "col" }, l)))),
    h(
      "tbody",
      {},
      pools.map((pool) => {
        const spec = pool.spec || {};
        return h(
          "tr",
          { "data-nodepool": pool.metadata.name },
          h("th", { scope: "row" }, pool.metadata.name),
          h("td", {}, phaseBadge(pool.status.phase)),
          h("td", {}, pool.status.version || spec.version || "—"),
          h("td", {}, spec.minNodeCount ?? "—"),
          h("td", {}, spec.maxNodeCount ?? "—"),
          h("td", {}, pool.status.readyNodes ?? 0),
          h("td", {}, spec.instanceType || "—"),
          h("td", {}, pool.status.zone || "—"),
        );
      }),
    ),
  );
}

function eventsTable(events) {
  if (!events.length) return h("p", {}, "No events.");
  const newest = [...events].sort((a, b) => String(b.lastTimestamp).localeCompare(String(a.lastTimestamp)));
  const warnings = newest.filter((e) => e.type === "Warning").length;
  return [
    h("p", {}, `${events.length} events, ${warnings} warning${warnings === 1 ? "" : "s"}.`),
    h(
      "table",
      { class: "data events" },
      h("caption", {}, "Events, newest first"),
      h("thead", {}, h("tr", {}, ["Type", "Reason", "Object", "Message", "Count", "Last seen"].map((l) => h("th", { scope: "col" }, l)))),
      h(
        "tbody",
        {},
        newest.map((event) =>
          h(
            "tr",
            { class: event.type === "Warning" ? "warning" : "normal", "data-event-type": event.type },
            h("td", {}, event.type === "Warning" ? h("strong", { class: "warning-label" }, h("span", { "aria-hidden": "true" }, "⚠ "), "Warning") : event.type),
            h("td", {}, event.reason),
            h("td", {}, event.involvedObject),
            h("td", { class: "message" }, event.message),
            h("td", {}, event.count),
            h("td", {}, timeElement(event.lastTimestamp)),
          ),
        ),
      ),
    ),
  ];
}

function scheduledNodePools(value) {
  if (!value) return "none";
  return Array.isArray(value) ? value.join(", ") : String(value);
}

// `GET /v1/schedules?cluster=` items (the Schedule schema of the API's OpenAPI document).
function schedulesView(target, answer) {
  if (answer === null) return h("p", {}, "None: this management service has no scheduled upgrades.");
  const items = answer.items || [];
  if (!items.length) return h("p", {}, "None.");
  return h(
    "table",
    { class: "data schedules" },
    h("caption", {}, "One-off upgrades, by time"),
    h("thead", {}, h("tr", {}, ["Schedule", "At", "Version", "Node pools", "State", "Outcome"].map((l) => h("th", { scope: "col" }, l)))),
    h(
      "tbody",
      {},
      items.map((item) =>
        h(
          "tr",
          { "data-schedule": item.id, "data-state": item.state },
          h("th", { scope: "row" }, h("code", {}, item.id)),
          h("td", {}, timeElement(item.at)),
          h("td", {}, item.version || "—"),
          h("td", {}, scheduledNodePools(item.nodePools)),
          h("td", {}, statusBadge(item.state)),
          h(
            "td",
            {},
            item.outcome || "—",
            item.operationId ? [" (", link(clusterHref(target, item.cluster, item.operationId), item.operationId, `op:${item.operationId}`), ")"] : null,
          ),
        ),
      ),
    ),
  );
}

function operationsNav(target, cluster, operations, selected) {
  if (!operations.length) return h("p", {}, "No operations.");
  return h(
    "nav",
    { "aria-label": "Operations of this cluster" },
    h(
      "ul",
      { class: "operations" },
      operations.map((op) =>
        h(
          "li",
          {},
          h(
            "a",
            { href: clusterHref(target, cluster, op.id), "data-key": `op:${op.id}`, "aria-current": op.id === selected ? "true" : null },
            `${op.kind} ${op.id}`,
          ),
          " ",
          statusBadge(op.status),
          ` started ${when(op.startedAt)}`,
        ),
      ),
    ),
  );
}

function iterationsView(items, ended) {
  const maps = new Map();
  for (const item of items) {
    if (!item.map) continue;
    if (!maps.has(item.map)) maps.set(item.map, new Map());
    const rows = maps.get(item.map);
    const row = rows.get(item.iteration) || { index: item.iteration, item: item.item, done: 0, latest: null, failed: null };
    if (item.type === "done") row.done += 1;
    if (item.type === "error") row.failed = item;
    row.latest = item;
    row.item = row.item || item.item;
    rows.set(item.iteration, row);
  }
  if (!maps.size) return h("p", {}, "No Map iterations in this operation yet.");
  return [...maps].map(([map, rows]) =>
    h(
      "table",
      { class: "data iterations", "data-map": map },
      h("caption", {}, `${map}: one row per iteration`),
      h("thead", {}, h("tr", {}, ["Iteration", "Works on", "Steps done", "Latest", "State"].map((l) => h("th", { scope: "col" }, l)))),
      h(
        "tbody",
        {},
        [...rows.values()]
          .sort((a, b) => a.index - b.index)
          .map((row) => {
            const latest = row.latest;
            const condition = row.failed ? "failed" : ended ? "finished" : latest.type === "wait" ? "waiting" : "in progress";
            return h(
              "tr",
              { class: `iteration ${condition.replace(" ", "-")}`, "data-iteration": row.index, "data-state": condition },
              h("th", { scope: "row" }, `#${row.index}`),
              h("td", {}, row.item || "—"),
              h("td", {}, row.done),
              h("td", {}, latest.step || "—"),
              h("td", {}, h("span", { class: `health ${condition === "failed" ? "bad" : condition === "waiting" ? "pending" : "ok"}` }, condition), row.failed ? ` ${row.failed.message}` : latest.type === "wait" ? ` ${latest.message}` : ""),
            );
          }),
      ),
    ),
  );
}

function timelineItem(item, longest) {
  const bar = h("span", { class: "bar", "aria-hidden": "true" });
  if (item.seconds) bar.style.setProperty("width", `${Math.max(2, Math.round((item.seconds / longest) * 100))}%`);
  return h(
    "li",
    { class: `step step-${item.type}`, "data-step": item.step || "", "data-map": item.map, "data-iteration": item.iteration, "data-item": item.item },
    h("span", { class: "elapsed" }, `+${item.elapsedSeconds.toFixed(1)} s`),
    " ",
    h("span", { class: "kind" }, item.type),
    " ",
    h("strong", {}, item.step || "execution"),
    item.item ? h("span", { class: "iter" }, ` (${item.map} #${item.iteration}: ${item.item})`) : item.map ? h("span", { class: "iter" }, ` (${item.map} #${item.iteration})`) : null,
    " ",
    h("span", { class: "msg" }, item.type === "done" ? seconds(item.seconds) : item.message),
    h("span", { class: "track", "aria-hidden": "true" }, bar),
  );
}

async function refreshSteps(target, operation, elements) {
  const key = `${target}/${operation.id}`;
  let record = state.steps.get(key);
  if (!record) {
    record = { items: [], next: 0, status: null, final: false };
    state.steps.set(key, record);
    elements.timeline.replaceChildren();
    elements.timeline.dataset.operation = key;
  }
  if (elements.timeline.dataset.operation !== key) {
    elements.timeline.replaceChildren();
    elements.timeline.dataset.operation = key;
    record.shown = 0;
  }
  if (!record.final) {
    const answer = await api(target, `operations/${encodeURIComponent(operation.id)}/steps?after=${record.next}`);
    record.items.push(...answer.items);
    record.next = answer.next;
    record.status = answer.status;
    record.timeScale = answer.timeScale;
    record.final = TERMINAL.has(answer.status);
  }
  const longest = Math.max(1, ...record.items.map((i) => i.seconds || 0));
  const shown = record.shown || 0;
  if (shown < record.items.length) {
    elements.timeline.append(...record.items.slice(shown).map((item) => timelineItem(item, longest)));
    record.shown = record.items.length;
  }
  update(elements.iterations, `${key}:${record.items.length}:${record.final}`, () => iterationsView(record.items, record.final));
  const scale = record.timeScale && record.timeScale !== 1 ? ` Local runtime at time scale ${record.timeScale}: waits run faster than on AWS.` : "";
  elements.count.textContent = `${record.items.length} steps so far.${scale}`;
}

function operationHead(target, operation) {
  const running = operation.status === "RUNNING";
  return h(
    "div",
    { class: "operation-head" },
    h("p", {}, h("strong", {}, `${operation.kind} ${operation.id}`), " ", statusBadge(operation.status), ` started ${when(operation.startedAt)}`, operation.endedAt ? `, ended ${when(operation.endedAt)}` : ""),
    operation.error ? h("p", { class: "error-note" }, `${operation.error}: ${operation.cause || ""}`) : null,
    running
      ? h(
          "button",
          {
            type: "button",
            class: "danger",
            "data-key": "cancel",
            onclick: async (event) => {
              if (!window.confirm(`Cancel operation ${operation.id}? A cancelled create leaves the cluster in ERROR.`)) return;
              event.target.disabled = true;
              try {
                await api(target, `operations/${encodeURIComponent(operation.id)}:cancel`, { method: "POST" });
                announce(`Cancellation of ${operation.id} requested`);
              } catch (error) {
                announce(`Could not cancel ${operation.id}: ${message(error)}`);
                event.target.disabled = false;
              }
            },
          },
          "Cancel operation",
        )
      : null,
  );
}

function section(id, title, ...content) {
  return h("section", { class: "panel", "aria-labelledby": `${id}-title`, id }, h("h2", { id: `${id}-title` }, title), ...content);
}

async function optional(promise) {
  try {
    return { value: await promise };
  } catch (error) {
    return { error };
  }
}

function renderCluster(target, name, selectedOperation) {
  setTitle(`Cluster ${name}`, [{ text: "Fleet", href: "#/" }, { text: target }, { text: name }]);
  const view = document.getElementById("view");
  const el = {
    facts: h("div", {}, h("p", {}, "Loading…")),
    replicas: h("div", {}),
    nodePools: h("div", {}),
    operations: h("div", {}),
    head: h("div", {}),
    count: h("p", { class: "meta" }),
    iterations: h("div", {}),
    timeline: h("ol", { class: "timeline", "aria-label": "Steps, oldest first" }),
    schedules: h("div", {}),
    events: h("div", {}),
  };
  view.replaceChildren(
    section("summary", "Summary", el.facts),
    section("replicas", "Control plane", el.replicas),
    section("nodepools", "Node pools", el.nodePools),
    section(
      "operation",
      "Operations",
      el.operations,
      el.head,
      h("h3", {}, "Per replica, node pool and batch"),
      el.iterations,
      h("h3", {}, "Timeline"),
      el.count,
      el.timeline,
    ),
    section("schedules", "Scheduled upgrades", el.schedules),
    section("events", "Events", el.events),
  );
  const encoded = encodeURIComponent(name);
  startPolling(async () => {
    const [cluster, events, operations, schedules] = await Promise.all([
      optional(api(target, `clusters/${encoded}`)),
      optional(api(target, `clusters/${encoded}/events`)),
      optional(api(target, `operations?cluster=${encoded}&limit=10`)),
      optional(schedulesOf(target, name)),
    ]);
    if (cluster.value) {
      const record = cluster.value;
      noticePhase(target, record, name, record.status.phase);
      update(el.facts, JSON.stringify(record.metadata) + JSON.stringify({ ...record.status, controlPlane: null, nodePools: null }), () => clusterFacts(target, record));
      update(el.replicas, JSON.stringify(record.status.controlPlane?.replicas || []), () => replicasTable(record));
      update(el.nodePools, JSON.stringify(record.status.nodePools || []), () => nodePoolsTable(record));
    } else if (cluster.error.status === 404) {
      update(el.facts, "gone", () => h("p", {}, `Cluster ${name} does not exist (deleted?); its events and operations are kept.`));
      update(el.replicas, "gone", () => h("p", {}, "—"));
      update(el.nodePools, "gone", () => h("p", {}, "—"));
    } else {
      update(el.facts, `error:${message(cluster.error)}`, () => errorNote(cluster.error, "the cluster"));
    }
    if (events.value) update(el.events, JSON.stringify(events.value.items), () => eventsTable(events.value.items));
    else update(el.events, `error:${message(events.error)}`, () => errorNote(events.error, "events"));
    // Scheduled upgrades: none scheduled, or a service older than the route (schedulesOf gives null).
    if (schedules.error) update(el.schedules, `error:${message(schedules.error)}`, () => errorNote(schedules.error, "schedules"));
    else update(el.schedules, JSON.stringify(schedules.value), () => schedulesView(target, schedules.value));

    if (operations.error) {
      update(el.operations, `error:${message(operations.error)}`, () => errorNote(operations.error, "operations"));
      throw operations.error;
    }
    const list = operations.value.items;
    for (const op of list) {
      const before = state.operations.get(op.id);
      if (before && before !== op.status) announce(`Operation ${op.id} ${op.status}`);
      state.operations.set(op.id, op.status);
    }
    const current = cluster.value?.status.currentOperation;
    const selectedId = selectedOperation || current || (list[0] && list[0].id);
    let selected = list.find((op) => op.id === selectedId);
    if (!selected && selectedId) selected = await api(target, `operations/${encodeURIComponent(selectedId)}`);
    update(el.operations, JSON.stringify(list) + selectedId, () => operationsNav(target, name, list, selectedId));
    if (selected) {
      update(el.head, JSON.stringify(selected), () => operationHead(target, selected));
      await refreshSteps(target, selected, el);
    }
    if (cluster.error && cluster.error.status !== 404) throw cluster.error;
  });
}

// ------------------------------------------------------------------ navigation

function setTitle(title, crumbs) {
  document.title = `${title} · kubestep dashboard`;
  document.getElementById("page-title").textContent = title;
  const nav = document.getElementById("breadcrumb");
  nav.replaceChildren(
    h(
      "ol",
      {},
      crumbs.map((crumb, index) =>
        h("li", {}, crumb.href && index < crumbs.length - 1 ? h("a", { href: crumb.href }, crumb.text) : h("span", { "aria-current": index === crumbs.length - 1 ? "page" : null }, crumb.text)),
      ),
    ),
  );
}

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "t" && parts[2] === "c" && parts[3]) {
    renderCluster(parts[1], parts[3], parts[4] === "op" ? parts[5] : null);
  } else {
    renderFleet();
  }
}

async function main() {
  try {
    await loadTargets();
  } catch (error) {
    document.getElementById("refresh-state").textContent = "Not connected";
    const hint =
      error.status === 401 ? " Open the URL that `kubestep dashboard` printed: it carries this session's token." : "";
    document.getElementById("view").replaceChildren(h("p", { class: "error-note", role: "alert" }, `${message(error)}.${hint}`));
    return;
  }
  window.addEventListener("hashchange", () => {
    route();
    // A new view: keyboard and screen-reader users start at its content, not at the top.
    document.getElementById("main").focus();
  });
  route();
}

main();
