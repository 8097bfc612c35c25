// The room scenario with one load tool for both sides (perf/RESULTS.md): N members in one room
// over WebSocket, one publisher, deliveries per second and latency percentiles, and the
// server's CPU per delivery when its pid is given. Against Socket.IO 4 it speaks socket.io-client
// (websocket transport only); against shardbus the WebSocket JSON mapping (`ws`), so both
// brokers are driven by the same runtime with the same pacing and payload.
//
//   node room_bench.js --target socketio --url http://127.0.0.1:7700 --members 1000 --msgs 2000
//   node room_bench.js --target shardbus --url ws://127.0.0.1:7480/ws --room bench.room ...
//
// `--procs P` spreads the members over P load processes (a single Node process parsing every
// delivery is what limits a fast broker); send stamps are wall-clock microseconds, the same in
// every process on the machine.
//
// Pacing: `--rate R` publishes R messages a second; `--window W` (instead) keeps W messages in
// flight (sent, not yet received by the first member), which finds the rate the broker can
// sustain. `--recover K`: shardbus only, the time for one member to join back and receive K
// missed publications of a history room.
import { fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { io as ioClient } from "socket.io-client";
import WebSocket from "ws";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith("--") ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const target = args.target || "shardbus";
const url = args.url || (target === "socketio" ? "http://127.0.0.1:7700" : "ws://127.0.0.1:7480/ws");
const room = args.room || "bench.room";
const members = Number(args.members || 100);
const msgs = Number(args.msgs || 1000);
const size = Math.max(24, Number(args.size || 64));
const rate = args.rate ? Number(args.rate) : 0;
const window = Number(args.window || (rate ? 0 : 64));
// Comma-separated: the CPU of every node of a cluster is summed.
const serverPid = args["server-pid"];
// The publisher's node when it is not the members' (`--publish-url`: across nodes).
const publishUrl = args["publish-url"] || url;
const recover = Number(args.recover || 0);
const procs = Math.max(1, Number(args.procs || 1));
const worker = args.worker !== undefined ? Number(args.worker) : null;

/** Server CPU seconds (user + system) of the pids in `pids` (comma-separated), from /proc. */
function cpuSeconds(pids) {
  if (!pids) return 0;
  return String(pids).split(",").reduce((total, pid) => {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return total + (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime (USER_HZ 100)
  }, 0);
}

/** Latencies in microseconds, in buckets of 10 µs up to 1 s, then 1 ms. */
class Latencies {
  constructor() {
    this.fine = new Float64Array(100000);
    this.coarse = new Float64Array(600000);
    this.count = 0;
  }
  record(us) {
    this.count++;
    if (us < 1000000) this.fine[Math.max(0, Math.floor(us / 10))]++;
    else this.coarse[Math.min(this.coarse.length - 1, Math.floor(us / 1000))]++;
  }
  /** The non-empty buckets, for sending to the primary process. */
  sparse() {
    const out = [];
    this.fine.forEach((n, i) => n && out.push([0, i, n]));
    this.coarse.forEach((n, i) => n && out.push([1, i, n]));
    return out;
  }
  add(sparse) {
    for (const [which, i, n] of sparse) {
      (which ? this.coarse : this.fine)[i] += n;
      this.count += n;
    }
  }
  quantile(q) {
    let left = Math.ceil(this.count * q);
    for (let i = 0; i < this.fine.length; i++) if ((left -= this.fine[i]) <= 0) return (i + 1) * 10;
    for (let i = 0; i < this.coarse.length; i++) if ((left -= this.coarse[i]) <= 0) return (i + 1) * 1000;
    return NaN;
  }
}

const now = () => (performance.timeOrigin + performance.now()) * 1000; // wall-clock µs
const padding = "x".repeat(size);
const payload = () => {
  const stamp = Math.round(now()).toString().padStart(16, "0").slice(-16);
  return stamp + padding.slice(16);
};
const stampOf = (text) => Number(text.slice(0, 16));

/** A connection to the broker at `at`: `join()`, `publish(text)`, `onMessage(text)`. */
async function open(name, at = url) {
  if (target === "socketio") {
    const socket = ioClient(at, { transports: ["websocket"], reconnection: false, forceNew: true });
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    return {
      join: () => new Promise((resolve) => socket.emit("join", room, resolve)),
      publish: (text) => socket.emit("pub", { room, data: text }),
      onMessage: (callback) => socket.on("msg", callback),
      close: () => socket.close(),
    };
  }
  const ws = new WebSocket(at, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const waiting = new Map();
  let onMessage = () => {};
  ws.on("message", (data) => {
    const frame = JSON.parse(data);
    if (frame.op === "msg") onMessage(frame.text, frame);
    else if (waiting.has(frame.op)) {
      const resolve = waiting.get(frame.op);
      waiting.delete(frame.op);
      resolve(frame);
    } else if (frame.op === "ping") ws.send('{"op":"pong"}');
    else if (frame.op === "err") console.error(name, frame.name, frame.message);
  });
  const ask = (op, frame) => new Promise((resolve) => {
    waiting.set(op, resolve);
    ws.send(JSON.stringify(frame));
  });
  await ask("welcome", { op: "hello", name, headers: false });
  return {
    join: (from) => ask("join", { op: "join", id: 1, topic: room, sid: 1, ...(from || {}) }),
    publish: (text) => ws.send(JSON.stringify({ op: "pub", topic: room, text })),
    onMessage: (callback) => { onMessage = callback; },
    close: () => ws.close(),
    raw: ws,
  };
}

async function recoverRun() {
  const member = await open("recovering member");
  const joined = await member.join();
  member.close();
  const publisher = await open("publisher");
  // `recover` publications in all, the marker last.
  for (let i = 1; i < recover; i++) publisher.publish(payload());
  const probe = await open("probe");
  await probe.join();
  // The probe's join went after the publications on the publisher's shard... wait until the
  // history holds them all: publish one marker the probe sees.
  await new Promise((resolve) => {
    probe.onMessage((text) => { if (text === "marker") resolve(); });
    publisher.publish("marker");
  });
  const back = await open("returning member");
  let got = 0;
  const started = now();
  const done = new Promise((resolve) => back.onMessage(() => { if (++got === recover) resolve(); }));
  const answer = await back.join({ epoch: joined.epoch, offset: joined.offset });
  await done;
  const elapsed = now() - started;
  console.log(JSON.stringify({ scenario: "recover", missed: recover, recovered: answer.recovered, count: answer.count, round_trips: 1, elapsed_ms: elapsed / 1000 }));
  process.exit(0);
}

/** Opens `count` members and joins them to the room. */
async function openMembers(count, first) {
  const conns = [];
  for (let i = 0; i < count; i += 50) {
    // Open in groups: a thousand handshakes at once overflow the accept queue.
    const group = await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => open(`member ${first + i + j}`)));
    conns.push(...group);
  }
  await Promise.all(conns.map((c) => c.join()));
  return conns;
}

/** The members' share of load process `index`. */
const share = (index) => Math.floor(members / procs) + (index < members % procs ? 1 : 0);

/** A load process other than the first: holds its members, counts, reports when done. */
async function workerRun() {
  const conns = await openMembers(share(worker), worker * 100000);
  const latencies = new Latencies();
  let received = 0;
  const expected = msgs * conns.length;
  let last = 0;
  for (const conn of conns) {
    conn.onMessage((text) => {
      const at = now();
      latencies.record(at - stampOf(text));
      last = at;
      if (++received === expected) process.send({ done: true, received, last, latencies: latencies.sparse() });
    });
  }
  process.on("message", (message) => {
    if (message.report) process.send({ done: true, received, last, latencies: latencies.sparse() });
  });
  process.send({ ready: true });
}

async function run() {
  if (worker !== null) return workerRun();
  if (recover) return recoverRun();
  const latencies = new Latencies();
  const workers = [];
  for (let i = 1; i < procs; i++) {
    const child = fork(new URL(import.meta.url).pathname, [...process.argv.slice(2), "--worker", String(i)]);
    workers.push(child);
    await new Promise((resolve) => child.once("message", resolve));
  }
  const conns = await openMembers(share(0), 0);
  const publisher = await open("publisher", publishUrl);
  let received = 0;
  let inflight = 0;
  let sent = 0;
  const expected = msgs * conns.length;
  let first = 0;
  let last = 0;
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const pump = () => {
    while (sent < msgs && inflight < window) {
      publisher.publish(payload());
      sent++;
      inflight++;
    }
  };
  conns.forEach((conn, index) => {
    conn.onMessage((text) => {
      const at = now();
      latencies.record(at - stampOf(text));
      last = at;
      if (index === 0 && window) {
        inflight--;
        pump();
      }
      if (++received === expected) finish();
    });
  });
  const reports = workers.map((child) => new Promise((resolve) => child.on("message", (m) => m.done && resolve(m))));
  const cpuBefore = cpuSeconds(serverPid);
  first = now();
  if (window) pump();
  else {
    const perTick = Math.max(1, Math.round(rate / 1000));
    const tickMs = (1000 * perTick) / rate;
    const started = now();
    const tick = () => {
      const due = Math.min(msgs, Math.floor(((now() - started) / 1000 / tickMs) * perTick) + perTick);
      while (sent < due) {
        publisher.publish(payload());
        sent++;
      }
      if (sent < msgs) setTimeout(tick, tickMs);
    };
    tick();
  }
  const timeout = setTimeout(() => {
    finish();
    for (const child of workers) child.send({ report: true });
  }, Number(args["timeout-s"] || 120) * 1000);
  await finished;
  for (const report of await Promise.all(reports)) {
    received += report.received;
    last = Math.max(last, report.last);
    latencies.add(report.latencies);
  }
  clearTimeout(timeout);
  const cpu = cpuSeconds(serverPid) - cpuBefore;
  const elapsed = (last - first) / 1e6;
  const all = msgs * members;
  const report = {
    target,
    room,
    members,
    msgs,
    size,
    procs,
    pacing: window ? `window ${window}` : `${rate}/s`,
    deliveries: received,
    lost: all - received,
    elapsed_s: Number(elapsed.toFixed(3)),
    deliveries_per_s: Math.round(received / elapsed),
    p50_us: latencies.quantile(0.5),
    p99_us: latencies.quantile(0.99),
    p999_us: latencies.quantile(0.999),
    server_cpu_s: Number(cpu.toFixed(2)),
    server_cpu_us_per_delivery: received ? Number(((cpu * 1e6) / received).toFixed(2)) : null,
  };
  console.log(JSON.stringify(report));
  for (const child of workers) child.kill();
  process.exit(0);
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
