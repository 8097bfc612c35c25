// The shardbus dashboard: a live view of one server, built only on the browser client users get
// (/js/shardbus.js) and its built-in commands (PROTOCOL.md §3.14) over the WebSocket edge, with
// an admin token typed in and kept in sessionStorage (never in the URL). Every second: the
// STATUS counters (rates per shard and in total, charted for two minutes with uPlot), the
// request latency percentiles of the last second, and the connections, topics, rooms and
// services listings; events arrive live from `$sys.events.>`.

import { Shardbus } from "/js/shardbus.js";
import uPlot from "/js/vendor/uplot/uPlot.esm.js";

const TOKEN_KEY = "shardbus.dashboard.token";
const HISTORY_POINTS = 120;
const MAX_EVENTS = 200;

const $ = (id) => document.getElementById(id);
const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

let bus = null;
let previous = null; // the last status reading: { at, totals, shards, latency }
let connections = []; // the last listing, with rates
let lastCounts = new Map(); // connection key -> { msgs_in, msgs_out, bytes_in, bytes_out, at }
let sortKey = "msgs_in_rate";
let timer = null;
const series = { t: [], msgsIn: [], msgsOut: [], bytesIn: [], bytesOut: [], shards: [] };
const playSubs = [];
let charts = null;
const events = [];

function rate(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function cell(text, numeric) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "n";
  return td;
}

/** Fills `table` with `columns` ([title, numeric, key?]) and `rows` (arrays of cells). */
function fill(table, columns, rows, { sortable, empty } = {}) {
  const head = document.createElement("thead");
  const tr = document.createElement("tr");
  for (const [title, numeric, key] of columns) {
    const th = document.createElement("th");
    th.scope = "col";
    if (numeric) th.className = "n";
    if (sortable && key) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = title;
      button.addEventListener("click", () => { sortKey = key; drawConnections(); });
      th.append(button);
      if (key === sortKey) th.setAttribute("aria-sort", "descending");
    } else {
      th.textContent = title;
    }
    tr.append(th);
  }
  head.append(tr);
  const body = document.createElement("tbody");
  for (const row of rows) {
    const line = document.createElement("tr");
    row.forEach((item, i) => line.append(item instanceof Node ? item : cell(String(item), columns[i]?.[1])));
    body.append(line);
  }
  if (!rows.length) {
    const line = document.createElement("tr");
    const td = cell(empty || "none");
    td.colSpan = columns.length;
    td.className = "empty";
    line.append(td);
    body.append(line);
  }
  table.replaceChildren(head, body);
}

function percentile(bounds, counts, p) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (!total) return null;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i];
    if (seen >= total * p) return i < bounds.length ? bounds[i] : Infinity;
  }
  return Infinity;
}

function micros(us) {
  if (us === null) return "–";
  if (us === Infinity) return "> 10 s";
  return us >= 1000 ? `≤ ${(us / 1000).toFixed(us >= 10000 ? 0 : 1)} ms` : `≤ ${us} µs`;
}

function drawTotals(now, rates, latency) {
  const items = [
    ["msgs in/s", rate(rates.msgs_in)],
    ["msgs out/s", rate(rates.msgs_out)],
    ["bytes in/s", bytes(rates.bytes_in)],
    ["bytes out/s", bytes(rates.bytes_out)],
    ["connections", now.totals.connections],
    ["subscriptions", now.totals.subscriptions],
    ["slow consumers", now.totals.slow_consumers],
    ["requests p50", micros(latency.p50)],
    ["requests p90", micros(latency.p90)],
    ["requests p99", micros(latency.p99)],
  ];
  $("totals").replaceChildren(...items.map(([name, value]) => {
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    dd.dataset.metric = name;
    div.append(dt, dd);
    return div;
  }));
}

function rates(before, after, seconds) {
  const per = (key) => Math.max(0, (after[key] || 0) - (before[key] || 0)) / seconds;
  return { msgs_in: per("msgs_in"), msgs_out: per("msgs_out"), bytes_in: per("bytes_in"), bytes_out: per("bytes_out") };
}

/** The per-shard chart, made once the number of shards is known. */
function makeShardChart(shards) {
  const colors = ["#2457c5", "#c2410c", "#15803d", "#7c3aed", "#b45309", "#0e7490", "#be123c", "#4d7c0f"];
  const lines = [{}];
  for (let i = 0; i < shards; i++) {
    const color = colors[i % colors.length];
    lines.push({ label: `shard ${i} in`, stroke: color, width: 2 });
    lines.push({ label: `shard ${i} out`, stroke: color, width: 1, dash: [4, 4] });
  }
  series.shards = Array.from({ length: 2 * shards }, () => []);
  charts.shards = new uPlot({
    width: Math.max(280, $("chart-shards").clientWidth), height: 220,
    scales: { x: { time: true, range: (_, min, max) => [max - HISTORY_POINTS, max] } },
    axes: [{}, { values: (_, ticks) => ticks.map(rate), size: 70 }],
    series: lines,
  }, [[], ...series.shards], $("chart-shards"));
}

function makeCharts() {
  const width = (id) => Math.max(280, $(id).clientWidth);
  const options = (title, format) => ({
    width: width("chart-msgs"), height: 220, title: "",
    // The last two minutes, however few points there are yet.
    scales: { x: { time: true, range: (_, min, max) => [max - HISTORY_POINTS, max] } },
    axes: [{}, { values: (_, ticks) => ticks.map(format), size: 70 }],
    series: [{}, { label: `${title} in`, stroke: "#2457c5", width: 2 }, { label: `${title} out`, stroke: "#c2410c", width: 2 }],
  });
  charts = {
    msgs: new uPlot(options("msgs", rate), [[], [], []], $("chart-msgs")),
    bytes: new uPlot(options("bytes", bytes), [[], [], []], $("chart-bytes")),
  };
  window.addEventListener("resize", () => {
    for (const [chart, id] of [[charts.msgs, "chart-msgs"], [charts.bytes, "chart-bytes"], [charts.shards, "chart-shards"]]) {
      if (chart) chart.setSize({ width: width(id), height: 220 });
    }
  });
}

function chart(at, total, perShard) {
  if (!charts.shards) makeShardChart(perShard.length);
  series.t.push(at / 1000);
  series.msgsIn.push(total.msgs_in);
  series.msgsOut.push(total.msgs_out);
  series.bytesIn.push(total.bytes_in);
  series.bytesOut.push(total.bytes_out);
  perShard.forEach((r, i) => {
    series.shards[2 * i]?.push(r.msgs_in);
    series.shards[2 * i + 1]?.push(r.msgs_out);
  });
  for (const list of [series.t, series.msgsIn, series.msgsOut, series.bytesIn, series.bytesOut, ...series.shards]) {
    if (list.length > HISTORY_POINTS) list.shift();
  }
  charts.shards.setData([series.t, ...series.shards]);
  charts.msgs.setData([series.t, series.msgsIn, series.msgsOut]);
  charts.bytes.setData([series.t, series.bytesIn, series.bytesOut]);
  $("chart-msgs").dataset.points = String(series.t.length);
}

async function tickStatus() {
  const status = await bus.command("status");
  const at = Date.now();
  const now = { at, totals: status.totals, shards: status.shards, latency: status.totals.request_latency };
  const server = status.server || {};
  $("server").textContent = `${server.id || ""} · v${server.version || "?"} · ${server.shards || "?"} shards · up ${Math.round((server.uptime_ms || 0) / 1000)} s`;
  if (previous) {
    const seconds = Math.max(0.001, (at - previous.at) / 1000);
    const total = rates(previous.totals, now.totals, seconds);
    const delta = (now.latency?.counts || []).map((n, i) => n - (previous.latency?.counts?.[i] || 0));
    const bounds = now.latency?.bounds_us || [];
    const latency = { p50: percentile(bounds, delta, 0.5), p90: percentile(bounds, delta, 0.9), p99: percentile(bounds, delta, 0.99) };
    drawTotals(now, total, latency);
    const perShard = now.shards.map((shard, i) => rates(previous.shards[i] || shard, shard, seconds));
    chart(at, total, perShard);
    fill($("shards"), [["shard"], ["msgs in/s", true], ["msgs out/s", true], ["bytes in/s", true], ["bytes out/s", true], ["connections", true], ["subscriptions", true], ["slow consumers", true]],
      now.shards.map((shard, i) => {
        const r = perShard[i];
        return [`shard ${i}`, rate(r.msgs_in), rate(r.msgs_out), bytes(r.bytes_in), bytes(r.bytes_out), shard.connections, shard.subscriptions, shard.slow_consumers];
      }));
    const errors = Object.entries(now.totals.errors || {}).sort((a, b) => b[1] - a[1]);
    fill($("errors"), [["code"], ["sent", true]], errors, { empty: "no errors sent" });
  }
  previous = now;
}

function connectionKey(c) {
  return `${c.node || ""}/${c.id}`;
}

function drawConnections() {
  const query = $("conn-search").value.trim().toLowerCase();
  const shown = connections
    .filter((c) => !query || `${c.name} ${c.remote} ${c.id} ${c.node || ""}`.toLowerCase().includes(query))
    .sort((a, b) => (b[sortKey] ?? 0) - (a[sortKey] ?? 0) || a.id - b.id)
    .slice(0, 200);
  $("conn-count").textContent = `${shown.length} of ${connections.length} shown`;
  fill($("connections"), [
    ["id"], ["name"], ["remote"], ["shard", true], ["subs", true],
    ["msgs in/s", true, "msgs_in_rate"], ["msgs out/s", true, "msgs_out_rate"],
    ["bytes in/s", true, "bytes_in_rate"], ["bytes out/s", true, "bytes_out_rate"],
    ["pending", true, "pending_bytes"], [""],
  ], shown.map((c) => {
    const kick = document.createElement("button");
    kick.type = "button";
    kick.className = "kick";
    kick.textContent = "Kick";
    kick.setAttribute("aria-label", `Kick connection ${c.id} (${c.name || "unnamed"})`);
    kick.addEventListener("click", async () => {
      kick.disabled = true;
      const params = { client_id: c.id };
      if (c.node) params.node = c.node;
      try { await bus.command("kick", params); } catch (err) { alert(err.message); }
      await tickListings();
    });
    const td = document.createElement("td");
    td.append(kick);
    return [cell(String(c.id)), cell(c.name || "–"), cell(c.remote || "–"), c.shard, c.subscriptions,
      cell(rate(c.msgs_in_rate), true), cell(rate(c.msgs_out_rate), true), cell(bytes(c.bytes_in_rate), true),
      cell(bytes(c.bytes_out_rate), true), cell(bytes(c.pending_bytes), true), td];
  }), { sortable: true, empty: "no connections" });
}

async function tickListings() {
  const [listed, topics, rooms, services] = await Promise.all([
    bus.command("connections", { limit: 1000 }),
    bus.command("topics"),
    bus.command("rooms", { limit: 1000 }),
    bus.command("services"),
  ]);
  const at = Date.now();
  const counts = new Map();
  connections = (listed.connections || []).map((c) => {
    const key = connectionKey(c);
    const before = lastCounts.get(key);
    const seconds = before ? Math.max(0.001, (at - before.at) / 1000) : 0;
    const per = (field) => (before ? Math.max(0, c[field] - before[field]) / seconds : 0);
    counts.set(key, { msgs_in: c.msgs_in, msgs_out: c.msgs_out, bytes_in: c.bytes_in, bytes_out: c.bytes_out, at });
    return { ...c, msgs_in_rate: per("msgs_in"), msgs_out_rate: per("msgs_out"), bytes_in_rate: per("bytes_in"), bytes_out_rate: per("bytes_out") };
  });
  lastCounts = counts;
  drawConnections();
  fill($("topics"), [["pattern"], ["queue"], ["subscribers", true]],
    (topics.topics || []).map((t) => [t.pattern, t.queue || "–", t.subscribers]), { empty: "no subscriptions" });
  fill($("rooms"), [["room"], ["node"], ["members", true], ["users", true]],
    (rooms.rooms || []).map((r) => [r.room, r.node || "–", r.clients, r.users]), { empty: "no rooms with members" });
  const serviceRows = [];
  for (const service of services.services || []) {
    for (const instance of service.instances || []) {
      const figures = instance.endpoints || [];
      const requests = figures.reduce((n, e) => n + (e.requests || 0), 0);
      const p99 = Math.max(0, ...figures.map((e) => e.latency_us?.p99 || 0));
      serviceRows.push([service.name, String(instance.instance), instance.version, instance.health, instance.node || "–",
        (instance.endpoints || []).map((e) => e.subject).join(" "), requests, p99 ? `${p99} µs` : "–"]);
    }
  }
  fill($("services"), [["service"], ["instance"], ["version"], ["health"], ["node"], ["endpoints"], ["requests", true], ["p99", true]],
    serviceRows, { empty: "no service instances" });
}

function drawEvents() {
  const query = $("event-filter").value.trim().toLowerCase();
  const shown = events.filter((e) => !query || e.text.toLowerCase().includes(query));
  $("events").replaceChildren(...shown.map((e) => {
    const li = document.createElement("li");
    li.textContent = e.text;
    return li;
  }));
}

function onEvents(msg) {
  const kind = msg.topic.replace("$sys.events.", "");
  const list = Array.isArray(msg.data) ? msg.data : [msg.data];
  for (const item of list) {
    const time = new Date().toLocaleTimeString();
    events.unshift({ text: `${time} ${kind} ${JSON.stringify(item)}` });
  }
  events.splice(MAX_EVENTS);
  drawEvents();
}

async function tick() {
  try {
    await tickStatus();
    await tickListings();
  } catch (err) {
    if (err.name === "PERMISSION_DENIED") {
      signOut("this token is not an admin's: the dashboard needs an admin identity");
      return;
    }
    $("state").textContent = `error: ${err.message}`;
  }
  timer = setTimeout(tick, 1000);
}

function signOut(reason) {
  clearTimeout(timer);
  sessionStorage.removeItem(TOKEN_KEY);
  if (bus) bus.close();
  bus = null;
  previous = null;
  playSubs.length = 0;
  $("board").hidden = true;
  $("login").hidden = false;
  $("logout").hidden = true;
  $("state").textContent = "signed out";
  $("state").className = "";
  $("login-error").textContent = reason || "";
}

async function signIn(token) {
  $("login-error").textContent = "";
  $("state").textContent = "connecting…";
  const candidate = new Shardbus(url, { name: "dashboard", token });
  try {
    await candidate.open();
  } catch {
    candidate.close();
    signOut("could not sign in: the server refused the token or is unreachable");
    return;
  }
  bus = candidate;
  sessionStorage.setItem(TOKEN_KEY, token);
  bus.onstate = (state) => {
    $("state").textContent = state;
    $("state").className = state === "connected" ? "connected" : "";
  };
  $("state").textContent = "connected";
  $("state").className = "connected";
  $("login").hidden = true;
  $("board").hidden = false;
  $("logout").hidden = false;
  if (!charts) makeCharts();
  bus.sub("$sys.events.>", onEvents);
  await bus.flush();
  tick();
}

function played(line) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()} ${line}`;
  $("play-log").prepend(li);
  while ($("play-log").children.length > MAX_EVENTS) $("play-log").lastChild.remove();
}

function shown(msg) {
  return msg.text ?? (msg.data !== undefined ? JSON.stringify(msg.data) : `base64 ${msg.base64}`);
}

$("play-sub").addEventListener("click", async () => {
  const pattern = $("play-topic").value.trim();
  if (!pattern || !bus) return;
  playSubs.push(bus.sub(pattern, (msg) => played(`${msg.topic}: ${shown(msg)}`)));
  await bus.flush();
  played(`subscribed to ${pattern}`);
});
$("play-pub").addEventListener("click", () => {
  const topic = $("play-topic").value.trim();
  if (!topic || !bus) return;
  bus.pub(topic, { text: $("play-payload").value });
  played(`published to ${topic}`);
});
$("play-req").addEventListener("click", async () => {
  const topic = $("play-topic").value.trim();
  if (!topic || !bus) return;
  try {
    const answer = await bus.req(topic, { text: $("play-payload").value }, { timeoutMs: 3000 });
    played(`answer from ${topic}: ${shown(answer)}`);
  } catch (err) {
    played(`request to ${topic}: ${err.message}`);
  }
});

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("token").value);
  $("token").value = "";
});
$("logout").addEventListener("click", () => signOut());
$("conn-search").addEventListener("input", drawConnections);
$("event-filter").addEventListener("input", drawEvents);

$("login-fields").disabled = false;
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved);
