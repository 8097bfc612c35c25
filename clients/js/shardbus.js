// shardbus browser client: the WebSocket JSON mapping (PROTOCOL.md §9) as a small,
// dependency-free ES module. Connect, publish, subscribe with wildcards, request with a
// timeout; reconnects with jittered exponential backoff and restores its subscriptions.
//
//   import { connect } from "/js/shardbus.js";
//   const bus = await connect("ws://localhost:7480/ws", { name: "dashboard" });
//   bus.sub("sensors.*.temp", (msg) => console.log(msg.topic, msg.data));
//   bus.pub("sensors.kitchen.temp", { celsius: 21.5 });
//   const answer = await bus.req("time.now", { text: "?" }, { timeoutMs: 2000 });
//
// Options: `name`, `token` (credentials), `echo` (receive your own publishes),
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
    this.nextId = 1;
    this.queue = []; // messages sent while disconnected
    this.closed = false;
    this.attempt = 0;
    this.onerror = (err) => console.warn("shardbus:", err.message);
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
        ws.send(JSON.stringify(hello));
      };
      ws.onmessage = (event) => {
        const frame = JSON.parse(event.data);
        if (frame.op === "welcome" && !welcomed) {
          welcomed = true;
          this.attempt = 0;
          this.welcome = frame;
          for (const [sid, sub] of this.subs) this._sendNow(this._subFrame(sid, sub));
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
        const sub = this.subs.get(frame.sid);
        if (sub) sub.callback(message(this, frame));
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
        if (pending) {
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
