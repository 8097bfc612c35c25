// The Socket.IO side of the room comparison (perf/RESULTS.md): a Socket.IO 4 server, websocket
// transport only, that does what a Socket.IO room app does. A client emits "join" with a room
// name (the server puts its socket in that room, as `socket.join`) and "pub" with
// `{ room, data }` (the server relays `data` to the room, as `io.to(room).emit`).
//
//   node server.js 7700
//   node server.js 7700 redis://127.0.0.1:6379   (one of several nodes: @socket.io/redis-adapter)
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const port = Number(process.argv[2] || 7700);
const redisUrl = process.argv[3];
const io = new Server(port, { transports: ["websocket"], serveClient: false });
if (redisUrl) {
  // The adapter Socket.IO documents for several nodes: rooms and broadcasts through Redis
  // pub/sub, one publisher and one subscriber connection per node.
  const pubClient = createClient({ url: redisUrl });
  const subClient = pubClient.duplicate();
  await Promise.all([pubClient.connect(), subClient.connect()]);
  io.adapter(createAdapter(pubClient, subClient));
}
io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack(io.sockets.adapter.rooms.get(room)?.size ?? 0);
  });
  socket.on("pub", ({ room, data }) => io.to(room).emit("msg", data));
});
console.log(`socket.io ${port}`);
