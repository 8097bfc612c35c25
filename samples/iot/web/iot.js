// The IoT sample's live page, on the broker's browser client (/js/shardbus.js) and the uPlot
// the broker serves: per-site charts (the aggregator's `iot.query.site` every second), every
// device's last values (on open: each device's room, which retains its last reading; then the
// live stream of `iot.dev.>`), the devices in alarm and the alert log (the `iot.alerts` room's
// history, then its live stream), and what the alerts pushed to this user. Sign in with the
// operator's token (kept in this tab's sessionStorage, never in the URL).
import { connect } from "/js/shardbus.js";
import uPlot from "/js/vendor/uplot/uPlot.esm.js";

const SAVED = "shardbus-iot";
const HISTORY_POINTS = 300; // five minutes at one point a second
const $ = (id) => document.getElementById(id);
const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

let bus = null;
/** Devices by `site.device`: their last reading. */
const devices = new Map();
/** Alerts raised and not cleared: `device|rule` → alert. */
const alarms = new Map();
/** Per site: its chart and its series. */
const sites = new Map();
const joined = new Set();

const fixed = (x, digits = 1) => (typeof x === "number" ? x.toFixed(digits) : "–");

function renderDevices() {
  const now = Date.now();
  const inAlarm = new Set([...alarms.values()].map((a) => a.device));
  const rows = [...devices.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([key, r]) => {
    const row = document.createElement("tr");
    if (inAlarm.has(key)) row.className = "alarm";
    const cells = [key, fixed(r.temperature), fixed(r.humidity), fixed(r.battery), r.status, r.seq, fixed((now - r.ts_ms) / 1000, 0)];
    row.replaceChildren(...cells.map((text, i) => Object.assign(document.createElement("td"), { textContent: String(text), className: i && i !== 4 ? "n" : "" })));
    row.dataset.device = key;
    return row;
  });
  $("devices").replaceChildren(...rows);
  $("devices-title").textContent = `Devices (last values): ${devices.size}`;
}

function renderAlarms() {
  const items = [...alarms.values()].map((a) => Object.assign(document.createElement("li"), { textContent: `${a.device}: ${a.rule} (${fixed(a.value)})` }));
  if (!items.length) items.push(Object.assign(document.createElement("li"), { className: "empty", textContent: "none" }));
  $("alarms").replaceChildren(...items);
}

/** A reading from a device's room or the live stream: kept when it is newer than the last. */
function reading(msg) {
  const r = msg.data;
  if (!r || typeof r.site !== "string") return;
  const key = `${r.site}.${r.device}`;
  const known = devices.get(key);
  if (!known || known.seq < r.seq) devices.set(key, r);
  watchSite(r.site);
}

/** An alert from the room: the alarms and the log follow it. */
function alert(msg) {
  const a = msg.data;
  if (!a || !a.rule) return;
  const key = `${a.device}|${a.rule}`;
  if (a.state === "raised") alarms.set(key, a);
  else alarms.delete(key);
  const line = Object.assign(document.createElement("li"), { textContent: `${new Date(a.ts_ms).toLocaleTimeString()} ${a.state} ${a.rule} ${a.device} (${fixed(a.value)})` });
  $("log").prepend(line);
  renderAlarms();
  renderDevices();
}

function watchSite(site) {
  if (sites.has(site)) return;
  const holder = Object.assign(document.createElement("div"), { id: `chart-${site}` });
  holder.append(Object.assign(document.createElement("h3"), { textContent: site, style: "font-size:.9rem;margin:.2rem 0" }));
  $("charts").append(holder);
  const series = [[], [], [], []];
  const width = () => Math.max(280, holder.clientWidth);
  const chart = new uPlot({
    width: width(), height: 200,
    scales: { x: { time: true, range: (_, min, max) => [max - HISTORY_POINTS, max] } },
    series: [{}, { label: "mean", stroke: "#2457c5", width: 2 }, { label: "min", stroke: "#8a93a6" }, { label: "max", stroke: "#c2410c" }],
  }, series, holder);
  window.addEventListener("resize", () => chart.setSize({ width: width(), height: 200 }));
  sites.set(site, { chart, series, points: 0 });
}

/** Every second: each site's figures from the aggregator, one point per chart. */
async function sample() {
  for (const [site, s] of sites) {
    try {
      const answer = await bus.req("iot.query.site", { site }, { timeoutMs: 2000 });
      const t = answer.data?.temperature;
      if (!t || !t.count) continue;
      s.series[0].push(Date.now() / 1000);
      s.series[1].push(t.mean);
      s.series[2].push(t.min);
      s.series[3].push(t.max);
      for (const list of s.series) if (list.length > HISTORY_POINTS) list.shift();
      s.chart.setData(s.series);
      s.points++;
      $(`chart-${site}`).dataset.points = s.points;
    } catch { /* the aggregator is not running: nothing to chart */ }
  }
  renderDevices();
}

/** The last value of every device the aggregator knows, from each device's retaining room. */
async function lastValues() {
  let known = [];
  try {
    const { data } = await bus.req("iot.query.sites", {}, { timeoutMs: 2000 });
    for (const { site } of data.sites || []) {
      const { data: one } = await bus.req("iot.query.site", { site }, { timeoutMs: 2000 });
      known = known.concat((one.by_device || []).map((d) => `${site}.${d.device}`));
    }
  } catch { /* no aggregator yet: the live stream shows devices as they report */ }
  await Promise.all(known.filter((k) => !joined.has(k)).map((key) => {
    joined.add(key);
    return bus.join(`iot.dev.${key}`, reading).catch(() => joined.delete(key));
  }));
  renderDevices();
}

async function signIn(token) {
  $("login-error").textContent = "";
  try {
    bus = await connect(url, { name: "iot monitor", token });
  } catch (err) {
    $("login-error").textContent = `could not sign in: ${err.message}`;
    return;
  }
  sessionStorage.setItem(SAVED, token);
  bus.onstate = (state) => {
    $("state").textContent = state === "connected" ? "online" : state;
    $("state").className = state === "connected" ? "online" : "";
  };
  bus.onpush = (msg) => $("pushes").prepend(Object.assign(document.createElement("li"), { textContent: msg.text ?? JSON.stringify(msg.data) }));
  $("login").hidden = true;
  $("board").hidden = false;
  $("state").textContent = "online";
  $("state").className = "online";
  renderAlarms();
  bus.sub("iot.dev.>", reading);
  const history = await bus.history("iot.alerts", { limit: 500 });
  for (const msg of history.publications) alert(msg);
  await bus.join("iot.alerts", alert, { from: { epoch: history.epoch, offset: history.offset } });
  await lastValues();
  document.body.dataset.ready = "true";
  setInterval(sample, 1000);
}

$("login").onsubmit = (event) => {
  event.preventDefault();
  signIn($("secret").value);
};
// The form works only once this script runs: a submit before would put the token in the URL.
$("sign-in").disabled = false;
const saved = sessionStorage.getItem(SAVED);
if (saved) signIn(saved);
