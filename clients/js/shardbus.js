// shardbus browser client: the WebSocket JSON mapping (PROTOCOL.md §9) as a small,
// dependency-free ES module. Connect, publish, subscribe with wildcards, request with a
// timeout; reconnects with jittered exponential backoff and restores its subscriptions.
//
//   import { connect } from "/js/shardbus.js";
//   const bus = await connect("ws://localhost:7480/ws", { name: "dashboard" });
//   bus.sub("sensors.*.temp", (msg) => console.log(msg.topic, msg.data));
//   bus.pub("sensors.kitchen.temp", { celsius: 21.5 });
//   const answer = await bus.req("time.now", { text: "?" }, { timeoutMs: 2000 });
//   const room = await bus.join("chat.lobby", (msg) => show(msg), {
//     info: { avatar: "cat.png" }, onJoin: (m) => hello(m.name), onLeave: (m) => bye(m.name) });
//   const { members } = await room.presence();
//
// Rooms (PROTOCOL.md §3.11): the client remembers each room's last (epoch, offset) and, after a
// reconnect, joins again from there, so a member misses nothing the room kept; `onRejoin`
// hears `{ recovered }` each time (false: reload your state, e.g. from `room.history()`).
//
// Services (PROTOCOL.md §3.12): `register` makes this connection an instance of a service
// whose endpoints get requests balanced over every instance; the client beats for it and
// registers it again after a reconnect. `discover` lists instances.
//
//   const svc = await bus.register("echo", { version: "1.0.0", endpoints: ["echo.say"] },
//     (req) => req.respond({ said: req.data }));
//   svc.setHealth("draining"); await svc.deregister();
//
// Built-in commands (PROTOCOL.md §3.14): `await bus.command("status")`, `bus.command("kick",
// { client_id: 7 })` — what the dashboard (/dashboard) is built on.
//
// Options: `name`, credentials (`token`, `jwt`, or `user` + `pass`), `echo` (receive your own publishes),
// `minBackoffMs`, `maxBackoffMs`.

/** A payload argument: any JSON value is sent as `data`; `{ text }` or `{ base64 }` as those. */
function payloadFields(payload) {
  if (payload === undefined) return {};
  if (payload !== null && typeof payload === "object") {
    if (typeof payload.text === "string" && Object.keys(payload).length === 1) return { text: payload.text };
    if (typeof payload.base64 === "string" && Object.keys(payload).length === 1) return { data_base64: payload.base64 };
  }
  return { data: payload };
}

/** A received message: topic, data / text / base64, headers, and `respond` for requests. */
function message(bus, frame) {
  const msg = {
    topic: frame.topic,
    sid: frame.sid,
    seq: frame.seq,
    epoch: frame.epoch,
    offset: frame.offset,
    headers: frame.headers || {},
    data: frame.data,
    text: frame.text,
    base64: frame.data_base64,
  };
  if (frame.reply) msg.respond = (payload) => bus._send({ op: "resp", reply: frame.reply, ...payloadFields(payload) });
  return msg;
}

/**
 * Closing codes after which reconnecting is pointless or wrong (PROTOCOL.md §5: close and
 * terminal): BAD_FRAME, FRAME_TOO_LARGE, AUTH_REQUIRED, AUTH_FAILED, HELLO_REQUIRED,
 * UNSUPPORTED_VERSION, AUTH_EXPIRED, TLS_REQUIRED, KICKED. Any other close reconnects.
 */
export const TERMINAL_CLOSES = new Set([1, 2, 9, 10, 18, 19, 26, 28, 29]);

/** The error a request or an op failed with: `code` and `name` from PROTOCOL.md §5. */
export class ShardbusError extends Error {
  constructor(frame) {
    super(`${frame.name}: ${frame.message}`);
    this.code = frame.code;
    this.name = frame.name;
  }
}

export class Shardbus {
  constructor(url, options = {}) {
    this.url = url;
    this.options = { name: "", minBackoffMs: 100, maxBackoffMs: 10000, ...options };
    this.subs = new Map(); // sid -> { pattern, queue, callback }
    this.requests = new Map(); // request_id -> { resolve, reject, timer }
    this.flushes = new Map(); // ping id -> resolve
    this.rooms = new Map(); // sid -> room state (see join)
    this.ops = new Map(); // op id -> { resolve, reject } for join, presence, history
    this.histories = new Map(); // label sid -> publications gathered
    this.services = new Map(); // endpoint sid -> service state (see register)
    this.nextId = 1;
    this.queue = []; // messages sent while disconnected
    this.closed = false;
    this.attempt = 0;
    this.onerror = (err) => console.warn("shardbus:", err.message);
    this.onpush = () => {}; // a backend's push to this connection's user (msg with sid 0)
    // A backend joined this connection to a room (POST /api/v1/rooms/{room}/members): set the
    // room's `onMessage`, `onJoin`, `onLeave` and `onRemoved` in here.
    this.onserverjoin = () => {};
    this.onstate = () => {};
  }

  /** Opens the connection; resolves once the server said WELCOME. */
  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      let welcomed = false;
      ws.onopen = () => {
        const hello = { op: "hello", name: this.options.name, id: this.nextId++ };
        if (this.options.echo) hello.echo = true;
        if (this.options.token) hello.token = this.options.token;
        if (this.options.jwt) hello.jwt = this.options.jwt;
        if (this.options.user) Object.assign(hello, { user: this.options.user, pass: this.options.pass });
        ws.send(JSON.stringify(hello));
      };
      ws.onmessage = (event) => {
        const frame = JSON.parse(event.data);
        if (frame.op === "welcome" && !welcomed) {
          welcomed = true;
          this.attempt = 0;
          this.welcome = frame;
          for (const [sid, sub] of this.subs) this._sendNow(this._subFrame(sid, sub));
          for (const [sid, room] of this.rooms) {
            // A backend's joins belonged to the old connection; the backend joins the new one.
            if (room.server) this.rooms.delete(sid);
            else this._sendNow(this._joinFrame(sid, room, this._rejoined(room)));
          }
          for (const svc of new Set(this.services.values())) this._registerAgain(svc);
          for (const queued of this.queue.splice(0)) this._sendNow(queued);
          this.onstate("connected");
          resolve(this);
          return;
        }
        this._dispatch(frame);
      };
      ws.onclose = () => {
        this.ws = null;
        for (const [, pending] of this.requests) {
          clearTimeout(pending.timer);
          pending.reject(new Error("connection lost"));
        }
        this.requests.clear();
        for (const [, pending] of this.ops) pending.reject(new Error("connection lost"));
        this.ops.clear();
        this.histories.clear();
        for (const svc of this.services.values()) {
          clearInterval(svc.timer);
          svc.timer = null;
          svc.instance = null;
        }
        this.welcome = null;
        if (!welcomed) reject(new Error("could not connect"));
        if (!this.closed) this._reconnect();
      };
    });
  }

  _reconnect() {
    this.onstate("reconnecting");
    const base = Math.min(this.options.maxBackoffMs, this.options.minBackoffMs * 2 ** this.attempt++);
    const delay = base / 2 + Math.random() * (base / 2);
    setTimeout(() => this.open().catch(() => {}), delay);
  }

  _dispatch(frame) {
    switch (frame.op) {
      case "msg": {
        if (frame.sid === 0) {
          this.onpush(message(this, frame));
          break;
        }
        const gathered = this.histories.get(frame.sid);
        if (gathered) {
          gathered.push(message(this, frame));
          break;
        }
        const room = this.rooms.get(frame.sid);
        if (room) {
          if (frame.offset !== undefined) {
            room.epoch = frame.epoch;
            room.offset = frame.offset;
          }
          room.onMessage(message(this, frame));
          break;
        }
        const svc = this.services.get(frame.sid);
        if (svc) {
          svc.onRequest(message(this, frame));
          break;
        }
        const sub = this.subs.get(frame.sid);
        if (sub) sub.callback(message(this, frame));
        break;
      }
      case "register":
      case "discover": {
        const pending = this.ops.get(frame.id);
        if (pending) {
          this.ops.delete(frame.id);
          pending.resolve(frame);
        }
        break;
      }
      case "join":
      case "presence":
      case "history": {
        if (frame.op === "join" && frame.id === 0 && !this.rooms.has(frame.sid)) {
          const room = { topic: frame.topic, server: true, onMessage: () => {}, onRejoin: () => {} };
          this.rooms.set(frame.sid, room);
          this.onserverjoin(room, frame);
        }
        if (frame.op === "join") {
          const room = this.rooms.get(frame.sid);
          if (room && frame.epoch !== undefined) {
            room.epoch = frame.epoch;
            room.offset = frame.offset - frame.count;
          }
        }
        if (frame.op === "history") {
          frame.publications = this.histories.get(frame.sid) || [];
          this.histories.delete(frame.sid);
        }
        const pending = this.ops.get(frame.id);
        if (pending) {
          this.ops.delete(frame.id);
          pending.resolve(frame);
        }
        break;
      }
      case "leave": {
        // A backend took this connection out of the room.
        const room = this.rooms.get(frame.sid);
        this.rooms.delete(frame.sid);
        if (room && room.onRemoved) room.onRemoved();
        break;
      }
      case "member": {
        const room = this.rooms.get(frame.sid);
        const callback = room && (frame.event === "join" ? room.onJoin : room.onLeave);
        if (callback) callback(frame.data);
        break;
      }
      case "resp": {
        const pending = this.requests.get(frame.request_id);
        if (pending) {
          this.requests.delete(frame.request_id);
          clearTimeout(pending.timer);
          pending.resolve(message(this, frame));
        }
        break;
      }
      case "err": {
        const pending = frame.ref && this.requests.get(Number(frame.ref));
        const op = this.ops.get(frame.id);
        if (op) {
          this.ops.delete(frame.id);
          op.reject(new ShardbusError(frame));
        } else if (pending) {
          this.requests.delete(Number(frame.ref));
          clearTimeout(pending.timer);
          pending.reject(new ShardbusError(frame));
        } else {
          this.onerror(new ShardbusError(frame));
        }
        if (TERMINAL_CLOSES.has(frame.code)) {
          // The server closes next; a kick or refused credentials must not be undone by a
          // reconnect.
          this.closed = true;
          this.onstate("closed");
        }
        break;
      }
      case "ping":
        this._sendNow({ op: "pong" });
        break;
      case "pong": {
        const resolve = this.flushes.get(frame.id);
        if (resolve) {
          this.flushes.delete(frame.id);
          resolve();
        }
        break;
      }
      case "drain":
        // The server is going away: leave at once (its drain ends sooner) and reconnect to
        // whatever serves the address next.
        this.onstate("draining");
        if (this.ws) this.ws.close(1000);
        break;
      default:
        break;
    }
  }

  _sendNow(frame) {
    this.ws.send(JSON.stringify(frame));
  }

  _connected() {
    return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN && this.welcome);
  }

  _send(frame) {
    if (this._connected()) this._sendNow(frame);
    else this.queue.push(frame);
  }

  _subFrame(sid, sub) {
    const frame = { op: "sub", topic: sub.pattern, sid };
    if (sub.queue) frame.queue = sub.queue;
    return frame;
  }

  _joinFrame(sid, room, id) {
    const frame = { op: "join", id, topic: room.topic, sid };
    if (room.info !== undefined) frame.info = room.info;
    if (room.epoch !== undefined) {
      frame.epoch = room.epoch;
      frame.offset = room.offset;
    }
    return frame;
  }

  /** The op id of a rejoin after a reconnect; its answer goes to the room's `onRejoin`. */
  _rejoined(room) {
    const id = this.nextId++;
    this.ops.set(id, { resolve: (answer) => room.onRejoin(answer), reject: (err) => this.onerror(err) });
    return id;
  }

  /** Sends `frame` with a fresh op id; resolves with the answer frame, rejects with its ERR. */
  _ask(frame) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.ops.set(id, { resolve, reject });
      this._send({ ...frame, id });
    });
  }

  /**
   * Joins room `topic`: `onMessage` gets its publications (with `epoch` and `offset` where the
   * room keeps history). Options: `info` (shown to others), `onJoin(member)`, `onLeave(member)`,
   * `onRejoin({ recovered })` after each reconnect. Resolves with the room: `sid`, `epoch`,
   * `offset`, `recovered`, `clients`, `users`, and `presence()`, `stats()`, `history()`,
   * `leave()`; rejects with the ERR (NOT_A_ROOM, ROOM_FULL, ...).
   */
  async join(topic, onMessage, { info, onJoin, onLeave, onRejoin, from } = {}) {
    const sid = this.nextId++;
    const room = { topic, onMessage, info, onJoin, onLeave, onRejoin: onRejoin || (() => {}) };
    if (from) {
      room.epoch = from.epoch;
      room.offset = from.offset;
    }
    this.rooms.set(sid, room);
    let answer;
    try {
      answer = await this._ask(this._joinFrame(sid, room));
    } catch (err) {
      this.rooms.delete(sid);
      throw err;
    }
    const counts = answer.data || {};
    return {
      sid,
      epoch: answer.epoch,
      offset: answer.offset,
      recovered: answer.recovered,
      clients: counts.clients,
      users: counts.users,
      position: () => ({ epoch: room.epoch, offset: room.offset }),
      presence: (options) => this.presence(topic, options),
      stats: () => this.presenceStats(topic),
      history: (options) => this.history(topic, options),
      leave: () => {
        this.rooms.delete(sid);
        this._send({ op: "leave", topic });
      },
    };
  }

  /** A page of `topic`'s members: resolves with `{ clients, users, members, cursor }`. */
  async presence(topic, { limit, cursor } = {}) {
    const frame = { op: "presence", topic };
    if (limit) frame.limit = limit;
    if (cursor) frame.cursor = cursor;
    const answer = await this._ask(frame);
    return { ...(answer.data || {}), cursor: answer.cursor };
  }

  /** How many clients and distinct users `topic` has. */
  async presenceStats(topic) {
    const answer = await this._ask({ op: "presence_stats", topic });
    return answer.data || {};
  }

  /** What room `topic` kept: resolves with `{ epoch, offset, publications }` (messages). Options:
   *  `limit`, `since: { epoch, offset }`, `reverse`. */
  async history(topic, { limit, since, reverse } = {}) {
    const sid = this.nextId++;
    this.histories.set(sid, []);
    const frame = { op: "history", topic, sid };
    if (limit) frame.limit = limit;
    if (reverse) frame.reverse = true;
    if (since) {
      frame.epoch = since.epoch;
      frame.offset = since.offset;
    }
    const answer = await this._ask(frame);
    return { epoch: answer.epoch, offset: answer.offset, publications: answer.publications };
  }

  _registerFrame(svc) {
    const endpoints = svc.endpoints.map((e) => ({ ...e }));
    const frame = { op: "register", name: svc.name, version: svc.version, endpoints, heartbeat_ms: svc.heartbeatMs };
    if (svc.description) frame.description = svc.description;
    if (svc.metadata) frame.metadata = svc.metadata;
    if (svc.weight) frame.weight = svc.weight;
    return frame;
  }

  /** REGISTERs `svc` (again) and starts beating for the id the answer carries. */
  async _registerAgain(svc) {
    try {
      const answer = await this._ask(this._registerFrame(svc));
      svc.instance = answer.instance;
      clearInterval(svc.timer);
      svc.timer = setInterval(() => svc.beat(), svc.heartbeatMs);
      return answer;
    } catch (err) {
      this.onerror(err);
      throw err;
    }
  }

  /**
   * Registers this connection as an instance of service `name`: `version` (SemVer),
   * `endpoints` (subjects, or `{ subject, queue }`), and optionally `heartbeatMs` (5000),
   * `description`, `metadata` (strings), `weight`. `onRequest(msg)` gets every request; answer
   * with `msg.respond(payload)`. Resolves with the service: `instance`, `setHealth(health,
   * load)` (`ok`, `degraded`, `draining`), `deregister()`; rejects with the ERR.
   */
  async register(name, { version, endpoints, heartbeatMs = 5000, description, metadata, weight }, onRequest) {
    const svc = {
      name,
      version,
      heartbeatMs,
      description,
      metadata,
      weight,
      onRequest,
      instance: null,
      health: "ok",
      load: 0,
      timer: null,
      endpoints: endpoints.map((e) => {
        const endpoint = typeof e === "string" ? { subject: e } : { ...e };
        endpoint.sid = this.nextId++;
        return endpoint;
      }),
    };
    svc.beat = () => {
      if (svc.instance && this._connected()) {
        this._sendNow({ op: "heartbeat", instance: svc.instance, health: svc.health, load: svc.load });
      }
    };
    svc.setHealth = (health, load = 0) => {
      svc.health = health;
      svc.load = load;
      svc.beat();
    };
    svc.deregister = async () => {
      clearInterval(svc.timer);
      for (const endpoint of svc.endpoints) this.services.delete(endpoint.sid);
      if (svc.instance && this._connected()) {
        this._sendNow({ op: "deregister", instance: svc.instance });
        await this.flush();
      }
      svc.instance = null;
    };
    for (const endpoint of svc.endpoints) this.services.set(endpoint.sid, svc);
    try {
      await this._registerAgain(svc);
    } catch (err) {
      for (const endpoint of svc.endpoints) this.services.delete(endpoint.sid);
      throw err;
    }
    return svc;
  }

  /** The instances of the services `pattern` matches (`>`: all), whose version meets
   *  `version` (a SemVer requirement such as `^1.2`). */
  async discover(pattern = ">", { version } = {}) {
    const frame = { op: "discover", topic: pattern };
    if (version) frame.version = version;
    const answer = await this._ask(frame);
    return answer.data || [];
  }

  /** Publishes `payload` (JSON, `{text}` or `{base64}`) to `topic`. */
  pub(topic, payload, headers) {
    this._send({ op: "pub", topic, ...payloadFields(payload), ...(headers ? { headers } : {}) });
  }

  /** Subscribes `callback` to `pattern` (`*` one token, `>` the rest); `{queue}` joins a group. */
  sub(pattern, callback, { queue } = {}) {
    const sid = this.nextId++;
    const sub = { pattern, queue, callback };
    this.subs.set(sid, sub);
    // While disconnected the subscription is restored from `subs` after the next WELCOME.
    if (this._connected()) this._sendNow(this._subFrame(sid, sub));
    const unsubscribe = () => {
      this.subs.delete(sid);
      if (this._connected()) this._sendNow({ op: "unsub", sid });
    };
    return { sid, unsubscribe };
  }

  /** Sends a request; resolves with the response message or rejects (TIMEOUT, NO_RESPONDERS). */
  req(topic, payload, { timeoutMs = 5000 } = {}) {
    const requestId = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.requests.delete(requestId);
        reject(new Error("timed out"));
      }, timeoutMs + 1000);
      this.requests.set(requestId, { resolve, reject, timer });
      this._send({ op: "req", topic, request_id: requestId, timeout_ms: timeoutMs, ...payloadFields(payload) });
    });
  }

  /** Runs built-in command `name` (PROTOCOL.md §3.14: `status`, `connections`, `kick`, ...)
   *  with `params`; resolves with its answer, or rejects with a `ShardbusError`
   *  (`PERMISSION_DENIED`, `BAD_PARAMETER`, ...). */
  async command(name, params = {}, { timeoutMs = 5000 } = {}) {
    const answer = await this.req(`$sys.cmd.${name}`, params, { timeoutMs });
    return answer.data;
  }

  /** Resolves once the server has handled everything sent before, and this connection's
   *  subscriptions are in effect on every shard (a PING answered after a barrier). */
  flush() {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.flushes.set(id, resolve);
      this._send({ op: "ping", id });
    });
  }

  /** Closes for good (no reconnect). */
  close() {
    this.closed = true;
    if (this.ws) this.ws.close(1000);
  }
}

/** Connects to `url` (e.g. `ws://host:7480/ws`); resolves once the server welcomed it. */
export function connect(url, options) {
  return new Shardbus(url, options).open();
}
