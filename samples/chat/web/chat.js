// The chat sample's web client, on the broker's browser client (/js/shardbus.js) only: the
// same rooms and direct messages as the terminal client (`shardbus-chat`). Sign in with a token
// or a JWT (kept in this tab's sessionStorage, never in the URL); each room shows its last
// messages on join, then the live stream, and its members as they come and go; `/msg USER TEXT`
// reaches every connection of that user through the broker's `push` command, which names the
// sender. After a dropped connection the client joins each room again from the last message it
// saw and gets what it missed.
import { connect } from "/js/shardbus.js";

const HISTORY_ON_JOIN = 50;
const SAVED = "shardbus-chat";
const $ = (id) => document.getElementById(id);
const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

/** Conversations by key (`#room` or `@user`): { name, kind, lines, members, room, unread }. */
const conversations = new Map();
let current = null;
let bus = null;
let me = "";

function conversation(kind, name) {
  const key = `${kind}${name}`;
  if (!conversations.has(key)) conversations.set(key, { key, name, kind, lines: [], members: new Map(), unread: 0 });
  return conversations.get(key);
}

function add(c, from, text) {
  c.lines.push({ from, text });
  if (c.lines.length > 1000) c.lines.shift();
  if (c !== current) c.unread++;
  render();
}

const notice = (text, c = current) => c && add(c, "", text);

function show(c) {
  current = c;
  if (c) c.unread = 0;
  render();
}

function render() {
  $("conversations").replaceChildren(...[...conversations.values()].map((c) => {
    const button = Object.assign(document.createElement("button"), {
      type: "button", textContent: `${c.kind}${c.name}${c.unread ? ` (${c.unread})` : ""}`,
    });
    button.setAttribute("aria-current", String(c === current));
    button.onclick = () => show(c);
    const item = document.createElement("li");
    item.append(button);
    return item;
  }));
  const lines = current ? current.lines : [];
  $("lines").replaceChildren(...lines.map(({ from, text }) => {
    const item = document.createElement("li");
    if (!from) {
      item.className = "notice";
      item.textContent = `* ${text}`;
    } else {
      item.append(Object.assign(document.createElement("b"), { textContent: `${from}:` }), text);
    }
    return item;
  }));
  $("lines").scrollTop = $("lines").scrollHeight;
  const names = current && current.kind === "#" ? [...new Set(current.members.values())].sort() : [];
  $("here-title").textContent = current && current.kind === "#" ? `Here (${current.members.size})` : "Here";
  $("members").replaceChildren(...names.map((n) => Object.assign(document.createElement("li"), { textContent: n })));
}

const memberName = (m) => m.info?.name || m.name || m.user || `client ${m.client}`;
const said = (msg) => [msg.data?.from ?? "?", msg.data?.text ?? msg.text ?? ""];

async function readMembers(c) {
  const { members, clients } = await bus.presence(c.name);
  c.members = new Map(members.map((m) => [m.client, memberName(m)]));
  return clients;
}

async function join(name) {
  const existing = conversations.get(`#${name}`);
  if (existing?.room) return show(existing);
  const c = conversation("#", name);
  try {
    // The last messages, then the live stream from right after the last of them: no gap.
    const history = await bus.history(name, { limit: HISTORY_ON_JOIN });
    c.lines = history.publications.map((msg) => { const [from, text] = said(msg); return { from, text }; });
    c.room = await bus.join(name, (msg) => add(c, ...said(msg)), {
      from: { epoch: history.epoch, offset: history.offset },
      info: { name: me },
      onJoin: (m) => { c.members.set(m.client, memberName(m)); add(c, "", `${memberName(m)} joined`); },
      onLeave: (m) => { c.members.delete(m.client); add(c, "", `${memberName(m)} left`); },
      onRejoin: async ({ recovered }) => {
        const clients = await readMembers(c);
        notice(recovered ? `back: ${clients} here, nothing missed` : `back: ${clients} here, some messages were lost`, c);
      },
    });
    const clients = await readMembers(c);
    show(c);
    notice(`joined ${name}: ${clients} here, ${history.publications.length} earlier messages`, c);
  } catch (err) {
    conversations.delete(c.key);
    notice(`cannot join ${name}: ${err.message}`);
  }
}

function leave(name) {
  const c = name ? conversations.get(`#${name}`) : current?.kind === "#" ? current : null;
  if (!c) return notice(name ? `not in ${name}` : "not in a room: /leave ROOM");
  c.room?.leave();
  conversations.delete(c.key);
  show([...conversations.values()][0] || null);
}

async function direct(user, text) {
  const c = conversation("@", user);
  show(c);
  try {
    const { recipients } = await bus.command("push", { user, text });
    add(c, me, text);
    if (recipients === 0) notice(`${user} is not online`, c);
  } catch (err) {
    notice(`not sent: ${err.message}`, c);
  }
}

async function who() {
  if (current?.kind !== "#") return notice("not a room");
  const { members, clients } = await bus.presence(current.name);
  notice(`${clients} here: ${members.map(memberName).join(", ")}`);
}

/** A typed line: a message to the conversation on screen, or a command. */
async function obey(line) {
  line = line.trim();
  if (!line) return;
  const [command, ...rest] = line.split(/\s+/);
  switch (line.startsWith("/") ? command : "") {
    case "":
      if (current?.kind === "@") return direct(current.name, line);
      if (current?.kind === "#") return bus.pub(current.name, { from: me, text: line });
      return notice("join a room first: /join ROOM");
    case "/join": return rest[0] ? join(rest[0]) : notice("usage: /join ROOM");
    case "/leave": return leave(rest[0]);
    case "/who": return who();
    case "/msg": return rest.length >= 2 ? direct(rest[0], rest.slice(1).join(" ")) : notice("usage: /msg USER TEXT");
    default: return notice(`no command ${command}: /join ROOM · /leave [ROOM] · /who · /msg USER TEXT`);
  }
}

async function signIn({ name, kind, secret, rooms }) {
  me = name;
  $("login-error").textContent = "";
  try {
    bus = await connect(url, { name, echo: true, [kind]: secret });
  } catch (err) {
    $("login-error").textContent = `could not sign in: ${err.message}`;
    return;
  }
  bus.onerror = (err) => {
    if (!bus.welcome && /AUTH/.test(err.message)) {
      sessionStorage.removeItem(SAVED);
      $("login-error").textContent = err.message;
    }
  };
  bus.onstate = (state) => {
    $("state").textContent = state === "connected" ? "online" : state;
    $("state").className = state === "connected" ? "online" : "";
  };
  bus.onpush = (msg) => add(conversation("@", msg.headers["sb-from"] || "?"), msg.headers["sb-from"] || "?", msg.text ?? JSON.stringify(msg.data));
  sessionStorage.setItem(SAVED, JSON.stringify({ name, kind, secret, rooms }));
  $("login").hidden = true;
  $("app").hidden = false;
  $("me").textContent = `· ${name}`;
  $("state").textContent = "online";
  $("state").className = "online";
  for (const room of rooms.split(",").map((r) => r.trim()).filter(Boolean)) await join(room);
  $("text").focus();
}

$("login").onsubmit = (event) => {
  event.preventDefault();
  signIn({ name: $("name").value.trim(), kind: $("kind").value, secret: $("secret").value, rooms: $("rooms").value });
};
$("say").onsubmit = (event) => {
  event.preventDefault();
  const line = $("text").value;
  $("text").value = "";
  obey(line);
};
// The form works only once this script runs: a submit before would put the secret in the URL.
$("sign-in").disabled = false;
const saved = sessionStorage.getItem(SAVED);
if (saved) signIn(JSON.parse(saved));
