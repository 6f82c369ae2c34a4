// kubestep dashboard: the fleet of every target (management service), a cluster's detail with
// its operations' live step view and timeline, scheduled upgrades and events, and the actions a
// user needs (upgrade, scale, delete, cancel), each behind a confirmation that names the cluster.
// Plain DOM, no framework, no build step. Every request goes to this page's own server, which
// signs it for the target's API. Everything the API returns is set as text, never as markup.

const MAX_BACKOFF_SECONDS = 30;
const AGE_REFRESH_MS = 10_000;
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]);
const ACTION_HEADER = "X-Kubestep-Dashboard";
const SESSION_HEADER = "X-Kubestep-Session";
const SESSION_KEY = "kubestep-dashboard-session";
const PHASES = ["PROVISIONING", "RUNNING", "RECONCILING", "DEGRADED", "STOPPING", "ERROR"];

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
  steps: new Map(), // "target/operation" -> {items, next, status, final, progress}
  versions: new Map(), // target -> GET /v1/version answer
  serverConfigs: new Map(), // target -> GET /v1/serverconfig answer
  operationInfo: new Map(), // "target/operation" -> GET /v1/operations/{id} answer (fleet)
  fleet: { data: new Map(), phase: "", text: "", warningsOnly: false, sort: { key: "name", descending: false } },
  showEarlier: false, // the cluster page: also earlier incarnations' events and operations
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
  for (const child of children.flat(Infinity)) {
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

// ------------------------------------------------------------------ times

function absolute(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : `${date.toLocaleString()} (${date.toISOString()})`;
}

// "3 min ago", "in 2 h": what a glance needs; the absolute time is the element's title.
function age(iso, now = Date.now()) {
  const moment = Date.parse(iso);
  if (Number.isNaN(moment)) return iso;
  const delta = Math.round((moment - now) / 1000);
  const size = Math.abs(delta);
  let text;
  if (size < 5) return "just now";
  if (size < 60) text = `${size} s`;
  else if (size < 3600) text = `${Math.floor(size / 60)} min`;
  else if (size < 86400) text = `${Math.floor(size / 3600)} h ${Math.floor((size % 3600) / 60)} min`;
  else text = `${Math.floor(size / 86400)} d ${Math.floor((size % 86400) / 3600)} h`;
  return delta < 0 ? `${text} ago` : `in ${text}`;
}

function timeElement(iso) {
  if (!iso) return "—";
  return h("time", { datetime: iso, title: absolute(iso), "data-age": "" }, age(iso));
}

// Ages move on between data changes: every few seconds, each <time data-age> says its age again.
function refreshAges() {
  const now = Date.now();
  for (const element of document.querySelectorAll("time[data-age]")) {
    const text = age(element.getAttribute("datetime"), now);
    if (element.textContent !== text) element.textContent = text;
  }
}

function seconds(value) {
  if (value === null || value === undefined) return "";
  return value < 60 ? `${value.toFixed(1)} s` : `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
}

// ------------------------------------------------------------------ AWS ids and the console

// The console host of a region's partition (China and GovCloud have consoles of their own).
function consoleBase(region) {
  if (region.startsWith("cn-")) return `https://${region}.console.amazonaws.cn`;
  if (region.startsWith("us-gov-")) return "https://console.amazonaws-us-gov.com";
  return `https://${region}.console.aws.amazon.com`;
}

function globalConsole(region) {
  if (region.startsWith("cn-")) return "https://console.amazonaws.cn";
  if (region.startsWith("us-gov-")) return "https://console.amazonaws-us-gov.com";
  return "https://console.aws.amazon.com";
}

// What a console URL may be built from: a region name, an ARN of plain characters (the URL is
// the API's data: nothing in it may steer a link to another host).
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
const ARN = /^arn:aws(-cn|-us-gov)?:[a-z0-9-]+:([a-z0-9-]*):(\d{12})?:[A-Za-z0-9_.:/+=@-]+$/;

function arnParts(arn) {
  if (!ARN.test(arn)) return null;
  const parts = arn.split(":");
  return { region: parts[3], account: parts[4], resource: parts.slice(5).join(":"), service: parts[2] };
}

// The console page of an AWS id, by its shape (or `kind` for names, like an Auto Scaling
// group's), in the id's own region (an ARN's) or the target's; null for an id without a page.
function consoleUrl(id, region, kind) {
  if (!REGION.test(region || "")) return null;
  const e = encodeURIComponent;
  const ec2 = (fragment) => `${consoleBase(region)}/ec2/home?region=${region}#${fragment}`;
  const vpc = (fragment) => `${consoleBase(region)}/vpcconsole/home?region=${region}#${fragment}`;
  if (kind === "asg") return ec2(`AutoScalingGroupDetails:id=${e(id)};view=details`);
  if (id.startsWith("arn:")) {
    const arn = arnParts(id);
    if (!arn) return null;
    const r = REGION.test(arn.region) ? arn.region : region;
    const base = consoleBase(r);
    if (arn.service === "elasticloadbalancing") {
      if (arn.resource.startsWith("loadbalancer/")) return `${base}/ec2/home?region=${r}#LoadBalancer:loadBalancerArn=${id}`;
      if (arn.resource.startsWith("targetgroup/")) return `${base}/ec2/home?region=${r}#TargetGroup:targetGroupArn=${id}`;
      if (arn.resource.startsWith("listener/")) {
        // A listener is shown on its load balancer's page.
        const [, type, name, lb] = arn.resource.split("/");
        const balancer = id.slice(0, id.indexOf(":listener/")) + `:loadbalancer/${type}/${name}/${lb}`;
        return `${base}/ec2/home?region=${r}#LoadBalancer:loadBalancerArn=${balancer}`;
      }
      return null;
    }
    if (arn.service === "states" && arn.resource.startsWith("execution:")) {
      return `${base}/states/home?region=${r}#/v2/executions/details/${id}`;
    }
    if (arn.service === "secretsmanager" && arn.resource.startsWith("secret:")) {
      // The ARN's name ends in the 6 random characters Secrets Manager adds.
      const name = arn.resource.slice("secret:".length).replace(/-[A-Za-z0-9]{6}$/, "");
      return `${base}/secretsmanager/secret?name=${e(name)}&region=${r}`;
    }
    if (arn.service === "sqs") {
      const queue = `https://sqs.${r}.amazonaws.com/${arn.account}/${arn.resource}`;
      return `${base}/sqs/v3/home?region=${r}#/queues/${e(queue)}`;
    }
    if (arn.service === "events" && arn.resource.startsWith("rule/")) {
      return `${base}/events/home?region=${r}#/eventbus/default/rules/${e(arn.resource.split("/").pop())}`;
    }
    if (arn.service === "iam" && arn.resource.startsWith("role/")) {
      return `${globalConsole(r)}/iam/home#/roles/details/${e(arn.resource.split("/").pop())}`;
    }
    return null;
  }
  if (/^i-[0-9a-f]+$/.test(id)) return ec2(`InstanceDetails:instanceId=${id}`);
  if (/^vol-[0-9a-f]+$/.test(id)) return ec2(`VolumeDetails:volumeId=${id}`);
  if (/^lt-[0-9a-f]+$/.test(id)) return ec2(`LaunchTemplateDetails:launchTemplateId=${id}`);
  if (/^sg-[0-9a-f]+$/.test(id)) return ec2(`SecurityGroup:groupId=${id}`);
  if (/^subnet-[0-9a-f]+$/.test(id)) return vpc(`SubnetDetails:subnetId=${id}`);
  if (/^vpc-[0-9a-f]+$/.test(id)) return vpc(`VpcDetails:VpcId=${id}`);
  return null;
}

// Where ids of `target` live: its region, and whether it is the local runtime, whose ids exist
// only in its emulator (shown plain: a console link would open a page of a real account).
function idContext(targetName) {
  const target = state.targets.find((t) => t.name === targetName) || {};
  const version = state.versions.get(targetName) || {};
  return { region: version.region || target.region || null, local: target.kind === "local" };
}

// An id that wraps only after a `:` or `/` of an ARN, never inside a resource id (`i-0abc…`).
function idText(id) {
  const parts = String(id).split(/(?<=[:/])/);
  return parts.map((part, index) => [h("span", { class: "id-part" }, part), index < parts.length - 1 ? h("wbr") : null]);
}

function awsId(id, context, kind) {
  if (!id) return "—";
  const url = context.local ? null : consoleUrl(String(id), context.region, kind);
  if (!url) {
    const title = context.local ? "an id in the local runtime's emulator (no AWS console page)" : null;
    return h("code", { class: "aws-id", title }, idText(id));
  }
  return h(
    "a",
    { class: "aws-id console-link", href: url, target: "_blank", rel: "noopener noreferrer", "data-aws-id": id },
    h("code", {}, idText(id)),
    h("span", { class: "visually-hidden" }, " (AWS console, opens in a new tab)"),
  );
}

// A DNS name that wraps only between its labels (after a dot), never inside one.
function endpointElement(name) {
  const labels = String(name).split(".");
  return h(
    "code",
    { class: "endpoint" },
    labels.map((label, index) => [
      h("span", { class: "endpoint-label" }, label),
      index < labels.length - 1 ? [".", h("wbr")] : null,
    ]),
  );
}

// ------------------------------------------------------------------ versions

function versionParts(version) {
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(version || "");
  return match ? match.slice(1).map(Number) : null;
}

function compareVersions(a, b) {
  const x = versionParts(a);
  const y = versionParts(b);
  if (!x || !y) return String(a).localeCompare(String(b));
  for (let i = 0; i < 3; i += 1) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

function minorOf(version) {
  const parts = versionParts(version);
  return parts ? `${parts[0]}.${parts[1]}` : null;
}

// "1.35.4 → 1.36.5" while an update moves it; the version alone otherwise.
function versionText(current, target) {
  if (target && target !== current) return `${current || "—"} → ${target}`;
  return current || "—";
}

// ------------------------------------------------------------------ links

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

function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function api(target, path, { method = "GET", body = undefined, key = undefined } = {}) {
  const headers = { Accept: "application/json", [SESSION_HEADER]: session || "" };
  if (method !== "GET") {
    headers[ACTION_HEADER] = "1";
    // The same key on a retry: the API answers it with the first operation, never a second.
    headers["Idempotency-Key"] = key || newKey();
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/${encodeURIComponent(target)}/v1/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = answer.error || {};
    throw new ApiFailure(response.status, error.code || `HTTP${response.status}`, error.message || response.statusText);
  }
  return answer;
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

async function versionOf(target) {
  if (!state.versions.has(target)) state.versions.set(target, await api(target, "version"));
  return state.versions.get(target);
}

async function serverConfigOf(target) {
  if (!state.serverConfigs.has(target)) state.serverConfigs.set(target, await api(target, "serverconfig"));
  return state.serverConfigs.get(target);
}

// The targets and where each answers now: a local runtime that restarted on other ports is
// followed by the server; the page says where it went.
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
  for (const target of body.targets) {
    const before = state.targets.find((t) => t.name === target.name);
    if (before && before.endpoint && target.endpoint && before.endpoint !== target.endpoint) {
      announce(`${target.name} now answers at ${target.endpoint}`);
      state.versions.delete(target.name);
    }
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

// ------------------------------------------------------------------ confirmations

// A modal dialog that names what it acts on; `confirm` runs on the confirming button and may
// throw (its message then shows in the dialog). `typed`: the confirming button stays disabled
// until that text is typed (a delete, as the GitHub and AWS consoles ask).
function confirmDialog({ title, body, confirmLabel, danger = false, typed = null, fields = [], confirm }) {
  const dialog = h("dialog", { class: "confirm", "aria-labelledby": "dialog-title", "aria-describedby": "dialog-body" });
  const problem = h("p", { class: "error-note dialog-error", role: "alert", hidden: true });
  const typedInput = typed
    ? h("input", { type: "text", id: "dialog-typed", autocomplete: "off", spellcheck: "false", "data-key": "typed" })
    : null;
  const button = confirmLabel
    ? h("button", { type: "submit", class: danger ? "danger" : "primary", disabled: typed ? true : null }, confirmLabel)
    : null;
  const opener = document.activeElement;
  if (typedInput) typedInput.addEventListener("input", () => (button.disabled = typedInput.value !== typed));
  const form = h(
    "form",
    { method: "dialog" },
    h("h2", { id: "dialog-title" }, title),
    h("div", { id: "dialog-body" }, body),
    fields,
    typedInput
      ? h("p", {}, h("label", { for: "dialog-typed" }, "Type ", h("strong", { class: "typed-name" }, typed), " to confirm"), typedInput)
      : null,
    problem,
    h(
      "p",
      { class: "dialog-buttons" },
      h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, confirmLabel ? "Keep it as it is" : "Close"),
      " ",
      button,
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!button || (typed && typedInput.value !== typed)) return;
    button.disabled = true;
    problem.hidden = true;
    try {
      await confirm();
      dialog.close();
    } catch (error) {
      problem.textContent = message(error);
      problem.hidden = false;
      button.disabled = false;
    }
  });
  dialog.append(form);
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (opener && document.contains(opener)) opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  const first = dialog.querySelector("select, input, button.primary, button.danger, button.secondary");
  if (first && !first.disabled) first.focus();
  return dialog;
}

async function started(target, cluster, operation, what) {
  announce(`${what} of cluster ${cluster} started: operation ${operation.id}`);
  location.hash = clusterHref(target, cluster, operation.id);
}

function openUpgrade(target, cluster) {
  const current = cluster.status.version || cluster.spec.controlPlane?.version;
  const name = cluster.metadata.name;
  serverConfigOf(target)
    .then((config) => {
      const minors = new Map((config.minors || []).map((m) => [m.minor, m]));
      const currentMinor = versionParts(current);
      // Newer versions up to one minor up: the control plane moves one minor at a time.
      const choices = (config.validVersions || []).filter((v) => {
        const parts = versionParts(v);
        return parts && currentMinor && compareVersions(v, current) > 0 && parts[1] <= currentMinor[1] + 1 && parts[0] === currentMinor[0];
      });
      if (!choices.length) {
        confirmDialog({
          title: `Upgrade cluster ${name}`,
          body: h("p", {}, `Cluster ${name} runs ${current}, the newest version this management service installs for it.`),
          confirmLabel: null,
          confirm: async () => {},
        });
        return;
      }
      const select = h(
        "select",
        { id: "upgrade-version", "data-key": "upgrade-version" },
        choices.map((v) => {
          const minor = minors.get(minorOf(v)) || {};
          const notes = [];
          if (minor.defaultVersion === v) notes.push("default");
          if (minor.supported === false) notes.push(`end of life ${minor.endOfLife || ""}`.trim());
          return h("option", { value: v }, notes.length ? `${v} (${notes.join(", ")})` : v);
        }),
      );
      const warning = h("p", { class: "warning-note", id: "upgrade-warning", "aria-live": "polite" });
      const summary = h("span", {});
      const explain = () => {
        const minor = minors.get(minorOf(select.value)) || {};
        summary.textContent = `${current} → ${select.value}`;
        warning.textContent =
          minor.supported === false
            ? `Warning: Kubernetes ${minorOf(select.value)} reached its end of life on ${minor.endOfLife}: it gets no more fixes, and the management service refuses to move a cluster onto it.`
            : "";
        warning.hidden = !warning.textContent;
      };
      select.addEventListener("change", explain);
      const pools = h("input", { type: "checkbox", id: "upgrade-nodepools", checked: true, "data-key": "upgrade-nodepools" });
      confirmDialog({
        title: `Upgrade cluster ${name}`,
        body: h("p", {}, `Upgrade the control plane of cluster ${name}, one replica at a time behind its health gate: `, summary, "."),
        fields: [
          h("p", {}, h("label", { for: "upgrade-version" }, "Version "), select),
          h("p", {}, pools, " ", h("label", { for: "upgrade-nodepools" }, "Then upgrade its node pools, one pool at a time")),
          warning,
        ],
        confirmLabel: `Upgrade ${name}`,
        confirm: async () => {
          const body = { version: select.value, ...(pools.checked ? { nodePools: "all" } : {}) };
          const operation = await api(target, `clusters/${encodeURIComponent(name)}/upgrade`, { method: "POST", body });
          await started(target, name, operation, `Upgrade to ${select.value}`);
        },
      });
      explain();
    })
    .catch((error) => announce(`Cannot list the versions: ${message(error)}`));
}

function openScale(target, clusterName, pool) {
  const spec = pool.spec || {};
  const poolName = pool.metadata.name;
  const number = (id, value) =>
    h("input", { type: "number", id, min: 0, max: 1000, step: 1, value: value ?? 0, required: true, inputmode: "numeric" });
  const min = number("scale-min", spec.minNodeCount);
  const max = number("scale-max", spec.maxNodeCount);
  confirmDialog({
    title: `Scale node pool ${poolName} of cluster ${clusterName}`,
    body: h("p", {}, `Now ${spec.minNodeCount}–${spec.maxNodeCount} nodes. New bounds change its Auto Scaling group in place; nothing rolls.`),
    fields: [
      h("p", {}, h("label", { for: "scale-min" }, "Minimum nodes "), min),
      h("p", {}, h("label", { for: "scale-max" }, "Maximum nodes "), max),
    ],
    confirmLabel: `Scale ${poolName} of ${clusterName}`,
    confirm: async () => {
      const body = { minNodeCount: Number(min.value), maxNodeCount: Number(max.value) };
      if (!Number.isInteger(body.minNodeCount) || !Number.isInteger(body.maxNodeCount) || body.minNodeCount > body.maxNodeCount) {
        throw new Error("the minimum must be a whole number no larger than the maximum");
      }
      const path = `clusters/${encodeURIComponent(clusterName)}/nodepools/${encodeURIComponent(poolName)}`;
      const operation = await api(target, path, { method: "PATCH", body });
      await started(target, clusterName, operation, `Scaling of node pool ${poolName}`);
    },
  });
}

function openDelete(target, cluster) {
  const name = cluster.metadata.name;
  const pools = (cluster.status.nodePools || []).map((p) => p.metadata.name);
  confirmDialog({
    title: `Delete cluster ${name}`,
    body: [
      h(
        "p",
        {},
        `This deletes cluster ${name} (uid ${cluster.status.uid || cluster.metadata.uid}): `,
        pools.length ? `its node pools ${pools.join(", ")}, ` : "",
        "its control plane and etcd volumes, its load balancer, security groups and secrets. It cannot be undone.",
      ),
    ],
    typed: name,
    danger: true,
    confirmLabel: `Delete ${name}`,
    confirm: async () => {
      const operation = await api(target, `clusters/${encodeURIComponent(name)}`, { method: "DELETE" });
      await started(target, name, operation, "Deletion");
    },
  });
}

function openCancel(target, operation) {
  const cluster = operation.target;
  confirmDialog({
    title: `Cancel operation on cluster ${cluster}`,
    body: h(
      "p",
      {},
      `Cancel ${operation.kind} ${operation.id} on cluster ${cluster}? Its execution stops; `,
      operation.kind === "CreateCluster"
        ? "a cancelled create rolls back what it made and deletes the cluster's record."
        : "what it finished stays, and the next update resumes the rest.",
    ),
    danger: true,
    confirmLabel: `Cancel ${operation.kind} on ${cluster}`,
    confirm: async () => {
      await api(target, `operations/${encodeURIComponent(operation.id)}:cancel`, { method: "POST" });
      announce(`Cancellation of ${operation.id} on cluster ${cluster} requested`);
    },
  });
}

// ------------------------------------------------------------------ fleet view

function replicaHealth(replica, context = {}) {
  const report = replica.bootstrap;
  if (report && report.startsWith("failed")) return { text: `unhealthy (${report})`, css: "bad" };
  if (replica.updatePending) {
    if (context.replacing && context.replacing.has(replica.index)) return { text: "being replaced", css: "pending" };
    if (context.operationRunning) return { text: "waiting to be replaced", css: "pending" };
    return { text: "not yet replaced", css: "pending" };
  }
  if (report === "ok") return { text: "healthy", css: "ok" };
  return { text: "pending", css: "pending" };
}

function replicasSummary(cluster, progress) {
  const replicas = (cluster.status.controlPlane || {}).replicas || [];
  const healthy = replicas.filter((r) => r.bootstrap === "ok" && !r.updatePending).length;
  const context = { replacing: replicasInWork(progress), operationRunning: Boolean(cluster.status.currentOperation) };
  return h(
    "div",
    {},
    h("span", {}, `${healthy}/${replicas.length} healthy`),
    replicas.length
      ? h(
          "ul",
          { class: "compact" },
          replicas.map((replica) => {
            const health = replicaHealth(replica, context);
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
      return h(
        "li",
        {},
        `${pool.metadata.name}: ${ready} ready (${spec.minNodeCount}–${spec.maxNodeCount})`,
        h("span", { class: "pool-version" }, ` · ${versionText(pool.status.version || spec.version, pool.status.targetVersion)}`),
      );
    }),
  );
}

function noticePhase(target, cluster, name, phase) {
  const key = `${target}/${name}`;
  const before = state.phases.get(key);
  state.phases.set(key, phase);
  if (before !== undefined && before !== phase) announce(`Cluster ${name} (${target}) is now ${phase}`);
}

// What needs a look, in words: end-of-life versions (the cluster's and its pools'), drift, the
// last error of a cluster not RUNNING.
function clusterWarnings(cluster) {
  const status = cluster.status;
  const warnings = [];
  for (const text of status.warnings || []) warnings.push({ kind: "end-of-life", label: "end of life", text });
  for (const pool of status.nodePools || []) {
    for (const text of pool.status.warnings || []) {
      warnings.push({ kind: "end-of-life", label: `end of life (${pool.metadata.name})`, text });
    }
  }
  const drift = Object.entries(status.drift || {});
  if (drift.length) {
    warnings.push({ kind: "drift", label: "drift", text: drift.map(([k, v]) => `${k}: ${v}`).join("; ") });
  }
  return warnings;
}

function warningBadges(warnings) {
  if (!warnings.length) return "none";
  return h(
    "ul",
    { class: "compact badges" },
    warnings.map((w) =>
      h(
        "li",
        {},
        h("span", { class: `badge warning-badge warning-${w.kind}`, title: w.text, "data-warning": w.kind }, h("span", { "aria-hidden": "true" }, "⚠ "), w.label),
        h("span", { class: "visually-hidden" }, `: ${w.text}`),
      ),
    ),
  );
}

// "RollReplicas 1/3 · CheckReplicaHealth (replica 1) · 42 s": how far the current operation is.
function progressView(target, clusterName, operationId) {
  const info = state.operationInfo.get(`${target}/${operationId}`);
  const record = state.steps.get(`${target}/${operationId}`);
  const progress = record && record.progress;
  const parts = [];
  let bar = null;
  if (progress) {
    const runs = progress.maps || [];
    const run = [...runs].reverse().find((m) => m.succeeded + m.failed < (m.length ?? Infinity)) || runs[runs.length - 1];
    if (run && run.length) {
      parts.push(`${run.map} ${run.succeeded}/${run.length}`);
      bar = h("progress", { max: run.length, value: run.succeeded, "aria-label": `${run.map}: ${run.succeeded} of ${run.length} done` });
    }
    const active = (progress.activeSteps || [])[0];
    if (active) parts.push(`${active.step}${active.item ? ` (${active.item})` : ""}`);
  }
  return h(
    "div",
    { class: "op-progress", "data-operation": operationId },
    link(clusterHref(target, clusterName, operationId), info ? `${info.kind} ${operationId}` : operationId, `op:${operationId}`),
    info && info.startedAt ? h("span", { class: "meta" }, " started ", timeElement(info.startedAt)) : null,
    parts.length ? h("div", { class: "progress-line" }, parts.join(" · ")) : null,
    bar,
  );
}

function fleetRows(target, clusters) {
  const filter = state.fleet;
  const text = filter.text.trim().toLowerCase();
  let rows = clusters.filter((cluster) => {
    const status = cluster.status;
    if (filter.phase && status.phase !== filter.phase) return false;
    if (filter.warningsOnly && !clusterWarnings(cluster).length) return false;
    if (text) {
      const haystack = [cluster.metadata.name, status.version, status.targetVersion, ...(status.nodePools || []).map((p) => p.status.version)]
        .filter(Boolean)
        .join(" ")
        .toLowerCase();
      if (!haystack.includes(text)) return false;
    }
    return true;
  });
  const { key, descending } = filter.sort;
  const value = (cluster) =>
    key === "phase" ? cluster.status.phase || "" : key === "version" ? cluster.status.version || "" : cluster.metadata.name;
  rows = rows.sort((a, b) => {
    const order = (key === "version" ? compareVersions(value(a), value(b)) : value(a).localeCompare(value(b))) || a.metadata.name.localeCompare(b.metadata.name);
    return descending ? -order : order;
  });
  return rows;
}

function sortHeader(label, key) {
  const sort = state.fleet.sort;
  const current = sort.key === key;
  const direction = current ? (sort.descending ? "descending" : "ascending") : "none";
  return h(
    "th",
    { scope: "col", "aria-sort": direction },
    h(
      "button",
      {
        type: "button",
        class: "sort",
        "data-key": `sort:${key}`,
        "data-sort": key,
        onclick: () => {
          state.fleet.sort = { key, descending: current ? !sort.descending : false };
          renderFleetTables();
        },
      },
      label,
      h("span", { "aria-hidden": "true" }, current ? (sort.descending ? " ▼" : " ▲") : ""),
    ),
  );
}

function fleetTable(target, clusters) {
  if (!clusters.length) return h("p", {}, "No clusters.");
  const rows = fleetRows(target, clusters);
  return [
    h(
      "table",
      { class: "data fleet" },
      h("caption", {}, `Clusters of ${target}`, rows.length !== clusters.length ? ` (${rows.length} of ${clusters.length} shown)` : ""),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          sortHeader("Cluster", "name"),
          sortHeader("Phase", "phase"),
          sortHeader("Version", "version"),
          ["Endpoint", "Control plane", "Node pools", "Operation", "Warnings"].map((label) => h("th", { scope: "col" }, label)),
        ),
      ),
      h(
        "tbody",
        {},
        rows.map((cluster) => {
          const name = cluster.metadata.name;
          const status = cluster.status;
          const warnings = clusterWarnings(cluster);
          return h(
            "tr",
            { "data-cluster": name, "data-phase": status.phase, "data-warnings": warnings.map((w) => w.kind).join(" ") },
            h("th", { scope: "row" }, link(clusterHref(target, name), name, `cluster:${target}/${name}`)),
            h("td", {}, phaseBadge(status.phase)),
            h("td", { class: "version" }, versionText(status.version || cluster.spec.controlPlane?.version, status.targetVersion)),
            h("td", {}, status.endpoint ? endpointElement(status.endpoint) : "—"),
            h("td", {}, replicasSummary(cluster, state.steps.get(`${target}/${status.currentOperation}`)?.progress)),
            h("td", {}, nodePoolsSummary(cluster)),
            h("td", {}, status.currentOperation ? progressView(target, name, status.currentOperation) : "—"),
            h("td", {}, warningBadges(warnings)),
          );
        }),
      ),
    ),
  ];
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

// The current operation of each cluster, with where it is (its steps' progress snapshot).
async function loadOperationProgress(target, clusters) {
  await Promise.all(
    clusters
      .map((cluster) => cluster.status.currentOperation)
      .filter(Boolean)
      .map(async (id) => {
        const key = `${target}/${id}`;
        try {
          if (!state.operationInfo.has(key)) state.operationInfo.set(key, await api(target, `operations/${encodeURIComponent(id)}`));
          // Only the snapshot: the step items are the cluster page's business.
          const answer = await api(target, `operations/${encodeURIComponent(id)}/steps?after=1000000`);
          const record = state.steps.get(key) || { items: [], next: 0, status: null, final: false };
          record.progress = answer;
          state.steps.set(key, record);
        } catch {
          // Progress is a nicety: the operation's link is there without it.
        }
      }),
  );
}

function fleetSummary() {
  const all = [...state.fleet.data.values()].flat();
  if (!all.length) return "";
  const phases = new Map();
  for (const cluster of all) phases.set(cluster.status.phase, (phases.get(cluster.status.phase) || 0) + 1);
  const warned = all.filter((c) => clusterWarnings(c).length).length;
  const running = all.filter((c) => c.status.currentOperation).length;
  const counts = [...phases].sort().map(([phase, count]) => `${count} ${phase}`).join(", ");
  return `${all.length} cluster${all.length === 1 ? "" : "s"}: ${counts}; ${running} with an operation running; ${warned} with warnings.`;
}

function renderFleetTables() {
  state.targets.forEach((target, index) => {
    const body = document.getElementById(`target-${index}-body`);
    const clusters = state.fleet.data.get(target.name);
    if (!body || !clusters) return;
    const progress = clusters.map((c) => c.status.currentOperation && JSON.stringify(state.steps.get(`${target.name}/${c.status.currentOperation}`)?.progress || null));
    const signature = JSON.stringify([clusters, state.fleet.phase, state.fleet.text, state.fleet.warningsOnly, state.fleet.sort, progress, idContext(target.name)]);
    update(body, signature, () => fleetTable(target.name, clusters));
  });
  const summary = document.getElementById("fleet-summary");
  if (summary) summary.textContent = fleetSummary();
}

function fleetControls() {
  const phase = h(
    "select",
    {
      id: "filter-phase",
      onchange: (event) => {
        state.fleet.phase = event.target.value;
        renderFleetTables();
      },
    },
    h("option", { value: "" }, "any phase"),
    PHASES.map((p) => h("option", { value: p, selected: state.fleet.phase === p ? true : null }, p)),
  );
  const text = h("input", {
    type: "search",
    id: "filter-text",
    value: state.fleet.text,
    placeholder: "name or version",
    oninput: (event) => {
      state.fleet.text = event.target.value;
      renderFleetTables();
    },
  });
  const warnings = h("input", {
    type: "checkbox",
    id: "filter-warnings",
    checked: state.fleet.warningsOnly ? true : null,
    onchange: (event) => {
      state.fleet.warningsOnly = event.target.checked;
      renderFleetTables();
    },
  });
  return h(
    "form",
    { class: "fleet-controls", role: "search", "aria-label": "Filter the fleet", onsubmit: (event) => event.preventDefault() },
    h("label", { for: "filter-phase" }, "Phase "),
    phase,
    h("label", { for: "filter-text" }, "Name or version "),
    text,
    h("span", { class: "checkbox" }, warnings, h("label", { for: "filter-warnings" }, " Only clusters with warnings")),
  );
}

function renderFleet() {
  setTitle("Fleet", [{ text: "Fleet" }]);
  const view = document.getElementById("view");
  if (!state.targets.length) {
    view.replaceChildren(h("p", {}, "No management service configured: see `kubestep config set-context`."));
    return;
  }
  view.replaceChildren(
    fleetControls(),
    h("p", { id: "fleet-summary", class: "meta", "aria-live": "polite" }),
    ...state.targets.map((target, index) =>
      h(
        "section",
        { class: "target", "aria-labelledby": `target-${index}`, "data-target": target.name },
        h("h2", { id: `target-${index}` }, target.name),
        h("p", { class: "meta", id: `target-${index}-meta` }, target.endpoint || ""),
        h("div", { id: `target-${index}-body`, class: "scroll" }, h("p", {}, "Loading…")),
      ),
    ),
  );
  startPolling(async (generation) => {
    await loadTargets();
    if (generation !== state.generation) return; // navigated away while it waited
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
          const version = await versionOf(target.name);
          const scale = version.timeScale && version.timeScale !== 1 ? `, time scale ${version.timeScale}` : "";
          const kind = target.kind === "local" ? " · local runtime" : "";
          meta.textContent = `management service ${version.managementService} · ${version.region} · kubestep ${version.kubestep}${scale}${kind} · ${target.endpoint || ""}`;
          const clusters = await listClusters(target.name);
          for (const cluster of clusters) noticePhase(target.name, cluster, cluster.metadata.name, cluster.status.phase);
          await loadOperationProgress(target.name, clusters);
          state.fleet.data.set(target.name, clusters);
        } catch (error) {
          failures += 1;
          state.fleet.data.delete(target.name);
          update(body, `error:${message(error)}`, () => errorNote(error, `the clusters of ${target.name}`));
        }
      }),
    );
    if (generation !== state.generation) return;
    renderFleetTables();
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
  const context = idContext(target);
  const upgrading = status.targetVersion && status.targetVersion !== status.version;
  return definitionList([
    ["Management service", target],
    ["Phase", phaseBadge(status.phase)],
    ["Version", versionText(status.version || cluster.spec.controlPlane?.version, status.targetVersion)],
    ...(upgrading ? [["Target version", h("span", { class: "target-version" }, status.targetVersion)]] : []),
    ["Endpoint", status.endpoint ? endpointElement(status.endpoint) : "—"],
    ["UID", status.uid || cluster.metadata.uid],
    ["Created", timeElement(cluster.metadata.createdAt)],
    ["VPC", status.vpcId ? awsId(status.vpcId, context) : "—"],
    ["Current operation", status.currentOperation ? link(clusterHref(target, cluster.metadata.name, status.currentOperation), status.currentOperation, `op:${status.currentOperation}`) : "none"],
    ["Last error", lastError ? `${lastError.error || ""}: ${lastError.message || ""}` : "none"],
    ...((status.warnings || []).length ? [["Warnings", status.warnings.join("; ")]] : []),
    ...(status.drift && Object.keys(status.drift).length
      ? [["Drift", Object.entries(status.drift).map(([k, v]) => `${k}: ${v}`).join("; ")]]
      : []),
  ]);
}

// Which replicas the current operation works on now (a running Map iteration over `replica N`).
function replicasInWork(progress) {
  const indexes = new Set();
  for (const iteration of (progress && progress.iterations) || []) {
    const match = /^replica (\d+)$/.exec(iteration.item || "");
    if (match && iteration.state === "running") indexes.add(Number(match[1]));
  }
  return indexes;
}

function replicasTable(target, cluster, progress) {
  const replicas = (cluster.status.controlPlane || {}).replicas || [];
  if (!replicas.length) return h("p", {}, "No replicas yet.");
  const context = idContext(target);
  const health = { replacing: replicasInWork(progress), operationRunning: Boolean(cluster.status.currentOperation) };
  const targetVersion = cluster.status.targetVersion;
  return h(
    "table",
    { class: "data replicas" },
    h("caption", {}, "Control-plane replicas by zone"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Replica", "Zone", "Health", "Version", "Instance", "etcd volume", "Auto Scaling group", "Launch template", "Subnet"].map((l) =>
          h("th", { scope: "col" }, l),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      replicas.map((replica) => {
        const said = replicaHealth(replica, health);
        const version = replica.version || "—";
        return h(
          "tr",
          { "data-replica": replica.index, "data-health": said.text },
          h("th", { scope: "row" }, `replica ${replica.index}`),
          h("td", {}, replica.zone || "—"),
          h("td", {}, h("span", { class: `health ${said.css}` }, said.text)),
          h("td", { class: "version" }, replica.updatePending && targetVersion ? versionText(version, targetVersion) : version),
          h("td", {}, awsId(replica.instanceId, context)),
          h("td", {}, awsId(replica.etcdVolumeId, context)),
          h("td", {}, awsId(replica.autoScalingGroup, context, "asg")),
          h(
            "td",
            {},
            awsId(replica.launchTemplateId, context),
            replica.launchTemplateVersion ? h("span", { class: "meta" }, ` v${replica.launchTemplateVersion}`) : null,
          ),
          h("td", {}, awsId(replica.subnetId, context)),
        );
      }),
    ),
  );
}

function nodePoolsTable(target, cluster) {
  const pools = cluster.status.nodePools || [];
  if (!pools.length) return h("p", {}, "No node pools.");
  const context = idContext(target);
  return h(
    "table",
    { class: "data" },
    h("caption", {}, "Node pools"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Node pool", "Phase", "Version", "Min", "Max", "Ready", "Instance type", "Zone", "Auto Scaling group", "Launch template", "Subnet", "Actions"].map((l) =>
          h("th", { scope: "col" }, l),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      pools.map((pool) => {
        const spec = pool.spec || {};
        const name = pool.metadata.name;
        return h(
          "tr",
          { "data-nodepool": name },
          h("th", { scope: "row" }, name),
          h("td", {}, phaseBadge(pool.status.phase)),
          h("td", { class: "version" }, versionText(pool.status.version || spec.version, pool.status.targetVersion)),
          h("td", {}, spec.minNodeCount ?? "—"),
          h("td", {}, spec.maxNodeCount ?? "—"),
          h("td", {}, pool.status.readyNodes ?? 0),
          h("td", {}, spec.instanceType || "—"),
          h("td", {}, pool.status.zone || "—"),
          h("td", {}, awsId(pool.status.autoScalingGroup, context, "asg")),
          h("td", {}, awsId(pool.status.launchTemplateId, context)),
          h("td", {}, awsId(pool.status.subnetId, context)),
          h(
            "td",
            {},
            h(
              "button",
              { type: "button", class: "secondary", "data-key": `scale:${name}`, "data-action": "scale", onclick: () => openScale(target, cluster.metadata.name, pool) },
              "Scale…",
              h("span", { class: "visually-hidden" }, ` node pool ${name}`),
            ),
          ),
        );
      }),
    ),
  );
}

function resourcesTable(target, cluster) {
  const resources = Object.entries(cluster.status.resources || {});
  if (!resources.length) return h("p", {}, "None recorded yet.");
  const context = idContext(target);
  return h(
    "table",
    { class: "data resources" },
    h("caption", {}, "The cluster's own AWS resources, by the name kubestep records them under"),
    h("thead", {}, h("tr", {}, ["Resource", "AWS id"].map((l) => h("th", { scope: "col" }, l)))),
    h(
      "tbody",
      {},
      resources.map(([logical, id]) => h("tr", { "data-resource": logical }, h("th", { scope: "row" }, logical), h("td", {}, awsId(id, context)))),
    ),
  );
}

function actionsPanel(target, cluster) {
  const name = cluster.metadata.name;
  return h(
    "div",
    { class: "actions" },
    h("button", { type: "button", "data-key": "action:upgrade", "data-action": "upgrade", onclick: () => openUpgrade(target, cluster) }, "Upgrade…"),
    " ",
    h("button", { type: "button", class: "danger", "data-key": "action:delete", "data-action": "delete", onclick: () => openDelete(target, cluster) }, `Delete cluster ${name}…`),
    h("p", { class: "meta" }, "Each asks for confirmation first. Scale a node pool from its row below; cancel a running operation from the operation."),
  );
}

// The incarnation an item belongs to: its own uid, or its operation's (older events have none).
function uidOf(item, operationUids) {
  return item.uid || (item.operationId ? operationUids.get(item.operationId) : undefined);
}

function eventsTable(events, earlierUids) {
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
        newest.map((event) => {
          const earlier = earlierUids.get(event);
          return h(
            "tr",
            {
              class: `${event.type === "Warning" ? "warning" : "normal"}${earlier ? " earlier" : ""}`,
              "data-event-type": event.type,
              "data-uid": event.uid || null,
              "data-incarnation": earlier ? "earlier" : "current",
            },
            h(
              "td",
              {},
              event.type === "Warning" ? h("strong", { class: "warning-label" }, h("span", { "aria-hidden": "true" }, "⚠ "), "Warning") : event.type,
              earlier ? h("span", { class: "badge earlier-badge" }, `earlier uid ${earlier}`) : null,
            ),
            h("td", {}, event.reason),
            h("td", {}, event.involvedObject),
            h("td", { class: "message" }, event.message),
            h("td", {}, event.count),
            h("td", {}, timeElement(event.lastTimestamp)),
          );
        }),
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

function operationsNav(target, cluster, operations, selected, currentUid) {
  if (!operations.length) return h("p", {}, "No operations.");
  return h(
    "nav",
    { "aria-label": "Operations of this cluster" },
    h(
      "ul",
      { class: "operations" },
      operations.map((op) => {
        const earlier = currentUid && op.uid && op.uid !== currentUid;
        return h(
          "li",
          { "data-operation": op.id, "data-incarnation": earlier ? "earlier" : "current" },
          h(
            "a",
            { href: clusterHref(target, cluster, op.id), "data-key": `op:${op.id}`, "aria-current": op.id === selected ? "true" : null },
            `${op.kind} ${op.id}`,
          ),
          " ",
          statusBadge(op.status),
          " started ",
          timeElement(op.startedAt),
          earlier ? h("span", { class: "badge earlier-badge" }, `earlier uid ${op.uid}`) : null,
        );
      }),
    ),
  );
}

function incarnationToggle(name, hiddenEvents, hiddenOperations, onChange) {
  if (!hiddenEvents && !hiddenOperations && !state.showEarlier) return null;
  const box = h("input", {
    type: "checkbox",
    id: "show-earlier",
    "data-key": "show-earlier",
    checked: state.showEarlier ? true : null,
    onchange: (event) => {
      state.showEarlier = event.target.checked;
      onChange();
    },
  });
  return h(
    "p",
    { class: "incarnations" },
    box,
    " ",
    h(
      "label",
      { for: "show-earlier" },
      `Show ${hiddenEvents} event${hiddenEvents === 1 ? "" : "s"} and ${hiddenOperations} operation${hiddenOperations === 1 ? "" : "s"} of earlier clusters named ${name} (other uids)`,
    ),
  );
}

// Rows of every Map iteration with its state now: final as soon as it ended (the progress
// snapshot), with the steps it finished (the step items inside its time).
function iterationRows(items, progress, ended) {
  const rows = [];
  for (const iteration of (progress && progress.iterations) || []) {
    const mine = items.filter(
      (item) =>
        item.map === iteration.map &&
        item.iteration === iteration.iteration &&
        (iteration.startedSeconds === null || item.elapsedSeconds >= iteration.startedSeconds - 0.001) &&
        (iteration.endedSeconds === null || item.elapsedSeconds <= iteration.endedSeconds + 0.001),
    );
    const latest = mine[mine.length - 1] || null;
    const failed = mine.find((item) => item.type === "error");
    let condition;
    if (iteration.state === "succeeded") condition = "finished";
    else if (iteration.state === "failed" || failed) condition = "failed";
    else if (iteration.state === "aborted") condition = "aborted";
    else if (ended) condition = "finished";
    else condition = latest && latest.type === "wait" ? "waiting" : "in progress";
    rows.push({ ...iteration, done: mine.filter((i) => i.type === "done").length, latest, failed, condition });
  }
  // A Map run's items not started yet (its count is known once the Map starts): a roll's
  // replicas waiting their turn, so the table lists every iteration from the start.
  for (const run of (progress && progress.maps) || []) {
    for (let index = run.started; index < (run.length ?? 0); index += 1) {
      const condition = ended ? "not run" : "not started";
      rows.push({ map: run.map, iteration: index, item: null, within: run.within, startedSeconds: null, endedSeconds: null, done: 0, latest: null, failed: null, condition });
    }
  }
  return rows;
}

function iterationsView(items, progress, ended) {
  const rows = iterationRows(items, progress, ended);
  if (!rows.length) return h("p", {}, "No Map iterations in this operation yet.");
  const maps = new Map();
  for (const row of rows) {
    if (!maps.has(row.map)) maps.set(row.map, []);
    maps.get(row.map).push(row);
  }
  return [...maps].map(([map, mapRows]) =>
    h(
      "table",
      { class: "data iterations", "data-map": map },
      h("caption", {}, `${map}: one row per iteration`),
      h("thead", {}, h("tr", {}, ["Iteration", "Works on", "Steps done", "Latest", "State", "Took"].map((l) => h("th", { scope: "col" }, l)))),
      h(
        "tbody",
        {},
        mapRows.map((row) => {
          const latest = row.latest;
          const css = row.condition === "failed" || row.condition === "aborted" ? "bad" : row.condition === "waiting" || row.condition === "in progress" ? "pending" : row.condition.startsWith("not ") ? "idle" : "ok";
          const took = row.endedSeconds !== null && row.startedSeconds !== null ? seconds(row.endedSeconds - row.startedSeconds) : "—";
          return h(
            "tr",
            { class: `iteration ${row.condition.replace(" ", "-")}`, "data-iteration": row.iteration, "data-state": row.condition },
            h("th", { scope: "row" }, `#${row.iteration}`),
            h("td", {}, row.item ? `${row.item}${row.within ? ` (in ${row.within})` : ""}` : row.within ? `— (in ${row.within})` : "—"),
            h("td", {}, row.done),
            h("td", {}, (latest && latest.step) || "—"),
            h(
              "td",
              {},
              h("span", { class: `health ${css}` }, row.condition),
              row.failed ? ` ${row.failed.message}` : latest && latest.type === "wait" && row.condition === "waiting" ? ` ${latest.message}` : "",
            ),
            h("td", {}, took),
          );
        }),
      ),
    ),
  );
}

// ------------------------------------------------------------------ the timeline

// Bars on one time axis: a step's bar runs from when it was entered to when it exited; steps of
// a Map iteration get a lane of their own, so iterations that ran at once overlap side by side.
function timelineBars(items, progress, status, now) {
  const containers = new Set([
    ...((progress && progress.maps) || []).map((m) => m.map),
    ...((progress && progress.parallels) || []),
    ...items.map((i) => i.map).filter(Boolean),
  ]);
  const iterations = (progress && progress.iterations) || [];
  // When the iteration run a bar belongs to began (a Map inside a Map reuses its indexes).
  const runStart = (map, iteration, start) => {
    const run = iterations.find(
      (it) => it.map === map && it.iteration === iteration && it.startedSeconds <= start + 0.002 && (it.endedSeconds === null || start <= it.endedSeconds + 0.002),
    );
    return run ? run.startedSeconds : undefined;
  };
  const bars = [];
  for (const item of items) {
    if (item.type !== "done" || item.seconds === null || item.seconds === undefined) continue;
    const start = Math.max(0, item.elapsedSeconds - item.seconds);
    bars.push({
      runStart: item.map ? runStart(item.map, item.iteration, start) : undefined,
      step: item.step,
      start,
      end: item.elapsedSeconds,
      map: item.map,
      iteration: item.iteration,
      item: item.item,
      container: containers.has(item.step),
      running: false,
      index: item.index,
    });
  }
  if (!TERMINAL.has(status)) {
    for (const active of (progress && progress.activeSteps) || []) {
      bars.push({
        step: active.step,
        start: active.sinceSeconds,
        end: Math.max(active.sinceSeconds, now),
        map: active.map,
        iteration: active.iteration,
        item: active.item,
        runStart: active.map ? runStart(active.map, active.iteration, active.sinceSeconds) : undefined,
        container: false,
        running: true,
      });
    }
  }
  return bars;
}

// The critical path: the chain of steps that set the end time. From the step that ended last,
// each step's predecessor is the step it waited for: the previous step of its own iteration
// (the latest of that iteration to end before it started), or, for the first step of an
// iteration or a step outside any Map, the latest step of all to end before it started. A step
// after a Map so waits for the Map's slowest iteration, whose steps join the path; an iteration
// that waited for a free slot (MaxConcurrency) waits for the one that freed it. A step of another
// Map counts only once that whole Map had ended: a Map still running beside it (a Parallel's
// other branch) is not what it waited for.
function criticalPath(bars) {
  const leaves = bars.filter((b) => !b.container);
  if (!leaves.length) return new Set();
  const slack = 0.002; // seconds: the history's timestamps are milliseconds
  const path = new Set();
  const latest = (candidates) =>
    candidates.reduce((a, b) => (b.end > a.end || (b.end === a.end && (b.index || 0) > (a.index || 0)) ? b : a));
  const mapEndedBy = (map, time) =>
    leaves.every((b) => b.map !== map || b.start > time || b.end <= time + slack);
  let current = latest(leaves);
  while (current) {
    path.add(current);
    const at = current;
    const before = leaves.filter(
      (b) =>
        !path.has(b) &&
        b.end <= at.start + slack &&
        b.start <= at.start &&
        (!b.map || b.map === at.map || mapEndedBy(b.map, at.start)),
    );
    const ownIteration = at.map
      ? before.filter((b) => b.map === at.map && b.iteration === at.iteration && b.start >= (at.runStart ?? -Infinity) - slack)
      : [];
    const candidates = ownIteration.length ? ownIteration : before;
    current = candidates.length ? latest(candidates) : null;
  }
  return path;
}

function niceStep(span) {
  const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  return steps.find((s) => span / s <= 8) || 7200;
}

function laneOf(bar) {
  return bar.map ? `${bar.map} #${bar.iteration}` : "";
}

function timelineView(record, status) {
  const items = record.items;
  const progress = record.progress || {};
  const startedAt = progress.startedAt ? Date.parse(progress.startedAt) : null;
  const now = startedAt && !TERMINAL.has(status) ? (Date.now() - startedAt) / 1000 : 0;
  const bars = timelineBars(items, progress, status, now);
  if (!bars.length) return h("p", {}, "No step has finished yet.");
  const span = Math.max(0.001, ...bars.map((b) => b.end), now);
  const critical = criticalPath(bars);
  const step = niceStep(span);
  const ticks = [];
  for (let t = 0; t <= span + 1e-9; t += step) ticks.push(t);
  const lanes = new Map([["", []]]);
  for (const bar of bars) {
    const key = laneOf(bar);
    if (!lanes.has(key)) lanes.set(key, []);
    lanes.get(key).push(bar);
  }
  const pct = (value) => `${((value / span) * 100).toFixed(3)}%`;
  const axis = h(
    "div",
    { class: "gantt-row gantt-axis", "aria-hidden": "true" },
    h("span", { class: "lane-label" }, "time since start"),
    h(
      "span",
      { class: "lane-track" },
      ticks.map((t) => {
        const tick = h("span", { class: "tick", "data-seconds": t }, seconds(t));
        tick.style.setProperty("left", pct(t));
        return tick;
      }),
    ),
  );
  const laneLabel = (key, laneBars) => {
    if (!key) return "operation";
    const first = laneBars[0];
    return `${first.map}: ${first.item || `#${first.iteration}`}`;
  };
  // The operation's own lane first, then each Map's lanes in the order the Maps ran, by index.
  const mapOrder = new Map();
  for (const bar of [...bars].sort((x, y) => x.start - y.start)) if (bar.map && !mapOrder.has(bar.map)) mapOrder.set(bar.map, mapOrder.size);
  const order = ([key, laneBars]) => (key ? [mapOrder.get(laneBars[0].map) + 1, laneBars[0].iteration] : [0, 0]);
  const sorted = [...lanes].filter(([, laneBars]) => laneBars.length).sort((x, y) => {
    const [a1, a2] = order(x);
    const [b1, b2] = order(y);
    return a1 - b1 || a2 - b2;
  });
  const rows = sorted.map(([key, laneBars]) =>
    h(
      "li",
      { class: "gantt-row lane", "data-lane": key || "operation" },
      h("span", { class: "lane-label" }, laneLabel(key, laneBars)),
      h(
        "span",
        { class: "lane-track" },
        laneBars.map((bar) => {
          const onPath = critical.has(bar);
          const words = `${bar.step}${bar.item ? ` (${bar.item})` : ""}: ${seconds(bar.start)} to ${bar.running ? "now" : seconds(bar.end)}${onPath ? ", on the critical path" : ""}${bar.running ? ", running" : ""}`;
          const element = h(
            "span",
            {
              class: `gantt-bar${bar.container ? " container" : ""}${bar.running ? " running" : ""}${onPath ? " critical" : ""}`,
              "data-step": bar.step,
              "data-start": bar.start.toFixed(3),
              "data-end": bar.end.toFixed(3),
              "data-lane": key || "operation",
              "data-critical": onPath ? "true" : "false",
              "data-running": bar.running ? "true" : "false",
              title: words,
            },
            h("span", { class: "visually-hidden" }, words),
          );
          element.style.setProperty("left", pct(bar.start));
          element.style.setProperty("width", `max(2px, ${pct(bar.end - bar.start)})`);
          return element;
        }),
      ),
    ),
  );
  const path = [...critical].sort((a, b) => a.start - b.start);
  const through = [...new Set(path.filter((b) => b.item).map((b) => `${b.map} ${b.item}`))];
  return h(
    "figure",
    { class: "gantt", "aria-labelledby": "gantt-caption" },
    h(
      "figcaption",
      { id: "gantt-caption" },
      `Each lane is one sequence of steps on a shared time axis (0 to ${seconds(span)}); a Map's iterations have a lane each, side by side, under the bracket of their Map. `,
      h("span", { class: "legend step", "aria-hidden": "true" }),
      "a step; ",
      h("span", { class: "legend critical", "aria-hidden": "true" }),
      `the critical path (what set the end time): ${path.length} step${path.length === 1 ? "" : "s"}${through.length ? ` through ${through.join(", ")}` : ""}`,
      TERMINAL.has(status) ? "." : ["; ", h("span", { class: "legend running", "aria-hidden": "true" }), "running now."],
    ),
    axis,
    h("ul", { class: "gantt-lanes" }, rows),
  );
}

// ------------------------------------------------------------------ the step log

function stepLogItem(item) {
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
  );
}

// Adds one steps answer (the items after `after`) to an operation's record. Two polls may ask
// with the same `after` (a navigation's new poll loop starts while the old one still waits for
// its answer; both share the record): only the first answer to arrive is taken, else its items
// would be added twice (a step drawn twice on the timeline).
function takeSteps(record, after, answer) {
  if (record.next !== after) return false;
  record.items.push(...answer.items);
  record.next = answer.next;
  record.status = answer.status;
  record.timeScale = answer.timeScale;
  record.progress = answer;
  // The status may be final before the history holds the last step's exit: poll until both are.
  record.final = TERMINAL.has(answer.status) && answer.historyEnded !== false;
  return true;
}

async function refreshSteps(target, operation, elements) {
  const key = `${target}/${operation.id}`;
  let record = state.steps.get(key);
  if (!record || record.items === undefined) {
    record = { items: [], next: 0, status: null, final: false, progress: record && record.progress };
    state.steps.set(key, record);
  }
  if (elements.log.dataset.operation !== key) {
    elements.log.replaceChildren();
    elements.log.dataset.operation = key;
  }
  if (!record.final) {
    const after = record.next;
    const answer = await api(target, `operations/${encodeURIComponent(operation.id)}/steps?after=${after}`);
    takeSteps(record, after, answer);
  }
  // What this page's log shows, counted on the log itself: a navigation's old poll loop may take
  // an answer into the shared record and draw it into the old page's (detached) log.
  const shown = elements.log.childElementCount;
  if (shown < record.items.length) elements.log.append(...record.items.slice(shown).map(stepLogItem));
  const progress = record.progress || {};
  update(elements.iterations, `${key}:${record.items.length}:${record.final}:${JSON.stringify(progress.iterations || [])}`, () =>
    iterationsView(record.items, progress, record.final),
  );
  // The running bars grow with time: the timeline is drawn again on every poll until the end.
  const stamp = record.final ? "final" : String(Date.now());
  update(elements.timeline, `${key}:${record.items.length}:${stamp}`, () => timelineView(record, record.status || operation.status));
  const scale = record.timeScale && record.timeScale !== 1 ? ` Local runtime at time scale ${record.timeScale}: waits run faster than on AWS.` : "";
  elements.count.textContent = `${record.items.length} steps so far.${scale}`;
  return record;
}

function operationHead(target, operation) {
  const running = operation.status === "RUNNING";
  const context = idContext(target);
  return h(
    "div",
    { class: "operation-head" },
    h(
      "p",
      {},
      h("strong", {}, `${operation.kind} ${operation.id}`),
      " ",
      statusBadge(operation.status),
      " started ",
      timeElement(operation.startedAt),
      operation.endedAt ? [", ended ", timeElement(operation.endedAt)] : "",
    ),
    operation.executionArn ? h("p", { class: "meta" }, "Execution: ", awsId(operation.executionArn, context)) : null,
    operation.error ? h("p", { class: "error-note" }, `${operation.error}: ${operation.cause || ""}`) : null,
    running
      ? h(
          "button",
          { type: "button", class: "danger", "data-key": "cancel", "data-action": "cancel", onclick: () => openCancel(target, operation) },
          "Cancel operation…",
        )
      : null,
  );
}

// A box for a wide table: on a narrow screen it scrolls sideways (reachable with the keyboard)
// rather than widening the page.
function wide(label) {
  return h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": `${label} (scrolls sideways)` });
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
    actions: h("div", {}),
    replicas: wide("Control-plane replicas"),
    nodePools: wide("Node pools"),
    resources: wide("AWS resources"),
    incarnations: h("div", {}),
    operations: h("div", {}),
    head: h("div", {}),
    count: h("p", { class: "meta" }),
    iterations: wide("Iterations"),
    timeline: h("div", { class: "timeline-chart" }),
    log: h("ol", { class: "timeline", "aria-label": "Steps, oldest first" }),
    schedules: h("div", {}),
    events: wide("Events"),
  };
  view.replaceChildren(
    section("summary", "Summary", el.facts),
    section("actions", "Actions", el.actions),
    section("replicas", "Control plane", el.replicas),
    section("nodepools", "Node pools", el.nodePools),
    section(
      "operation",
      "Operations",
      el.incarnations,
      el.operations,
      el.head,
      h("h3", {}, "Per replica, node pool and batch"),
      el.iterations,
      h("h3", {}, "Timeline"),
      el.timeline,
      h("h3", {}, "Step log"),
      el.count,
      el.log,
    ),
    section("schedules", "Scheduled upgrades", el.schedules),
    section("events", "Events", el.events),
    section("resources", "AWS resources", el.resources),
  );
  const encoded = encodeURIComponent(name);
  let redraw = () => {};
  startPolling(async (generation) => {
    const [cluster, events, operations, schedules] = await Promise.all([
      optional(api(target, `clusters/${encoded}`)),
      optional(api(target, `clusters/${encoded}/events`)),
      optional(api(target, `operations?cluster=${encoded}&limit=20`)),
      optional(schedulesOf(target, name)),
      optional(versionOf(target)),
    ]);
    // A navigation while this poll waited started a new poll loop: it draws the page from now on.
    if (generation !== state.generation) return;
    const record = cluster.value;
    if (record) {
      noticePhase(target, record, name, record.status.phase);
      update(el.facts, JSON.stringify(record.metadata) + JSON.stringify({ ...record.status, controlPlane: null, nodePools: null }) + JSON.stringify(idContext(target)), () => clusterFacts(target, record));
      update(el.actions, `${record.metadata.uid}:${record.status.version}:${JSON.stringify(record.status.nodePools || [])}`, () => actionsPanel(target, record));
      update(el.nodePools, JSON.stringify(record.status.nodePools || []), () => nodePoolsTable(target, record));
      update(el.resources, JSON.stringify(record.status.resources || {}), () => resourcesTable(target, record));
    } else if (cluster.error.status === 404) {
      update(el.facts, "gone", () => h("p", {}, `Cluster ${name} does not exist (deleted?); its events and operations are kept.`));
      update(el.actions, "gone", () => h("p", {}, "—"));
      update(el.replicas, "gone", () => h("p", {}, "—"));
      update(el.nodePools, "gone", () => h("p", {}, "—"));
      update(el.resources, "gone", () => h("p", {}, "—"));
    } else {
      update(el.facts, `error:${message(cluster.error)}`, () => errorNote(cluster.error, "the cluster"));
    }
    // Scheduled upgrades: none scheduled, or a service older than the route (schedulesOf gives null).
    if (schedules.error) update(el.schedules, `error:${message(schedules.error)}`, () => errorNote(schedules.error, "schedules"));
    else update(el.schedules, JSON.stringify(schedules.value), () => schedulesView(target, schedules.value));

    if (operations.error) {
      update(el.operations, `error:${message(operations.error)}`, () => errorNote(operations.error, "operations"));
      if (events.value) update(el.events, JSON.stringify(events.value.items), () => eventsTable(events.value.items, new Map()));
      throw operations.error;
    }
    const list = operations.value.items;
    for (const op of list) {
      const before = state.operations.get(op.id);
      if (before && before !== op.status) announce(`Operation ${op.id} ${op.status}`);
      state.operations.set(op.id, op.status);
    }
    // This incarnation: the cluster's uid, or (deleted) the newest operation's.
    const currentUid = (record && (record.status.uid || record.metadata.uid)) || (list.find((op) => op.uid) || {}).uid || null;
    const operationUids = new Map(list.map((op) => [op.id, op.uid]));
    const isEarlier = (uid) => Boolean(currentUid && uid && uid !== currentUid);
    const earlierOps = list.filter((op) => isEarlier(op.uid));
    const allEvents = events.value ? events.value.items : [];
    const earlierEvents = new Map(allEvents.filter((e) => isEarlier(uidOf(e, operationUids))).map((e) => [e, uidOf(e, operationUids)]));
    redraw = () => {
      const shownOps = state.showEarlier ? list : list.filter((op) => !isEarlier(op.uid));
      const shownEvents = state.showEarlier ? allEvents : allEvents.filter((e) => !earlierEvents.has(e));
      update(el.incarnations, `${earlierEvents.size}:${earlierOps.length}:${state.showEarlier}`, () =>
        incarnationToggle(name, earlierEvents.size, earlierOps.length, () => redraw()) || [],
      );
      if (events.value) {
        update(el.events, JSON.stringify([shownEvents, currentUid]), () => eventsTable(shownEvents, state.showEarlier ? earlierEvents : new Map()));
      } else {
        update(el.events, `error:${message(events.error)}`, () => errorNote(events.error, "events"));
      }
      update(el.operations, JSON.stringify([shownOps, selectedId, currentUid]), () => operationsNav(target, name, shownOps, selectedId, currentUid));
    };
    const current = record?.status.currentOperation;
    const firstOfThisCluster = list.find((op) => !isEarlier(op.uid));
    const selectedId = selectedOperation || current || (firstOfThisCluster && firstOfThisCluster.id);
    redraw();
    let selected = list.find((op) => op.id === selectedId);
    if (!selected && selectedId) selected = await api(target, `operations/${encodeURIComponent(selectedId)}`);
    let progress = null;
    if (selected) {
      update(el.head, JSON.stringify(selected) + JSON.stringify(idContext(target)), () => operationHead(target, selected));
      const steps = await refreshSteps(target, selected, el);
      if (selected.id === current) progress = steps.progress;
    }
    if (current && !progress) {
      // Another operation is selected: where the current one is still tells which replica it replaces.
      const answer = await optional(api(target, `operations/${encodeURIComponent(current)}/steps?after=1000000`));
      progress = answer.value || null;
    }
    if (record) {
      const working = [...replicasInWork(progress)].join(",");
      update(el.replicas, JSON.stringify([record.status.controlPlane?.replicas || [], record.status.targetVersion, record.status.currentOperation, working, idContext(target)]), () =>
        replicasTable(target, record, progress),
      );
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
    state.showEarlier = false;
    route();
    // A new view: keyboard and screen-reader users start at its content, not at the top.
    document.getElementById("main").focus();
  });
  setInterval(refreshAges, AGE_REFRESH_MS);
  route();
}

main();
