# A raw-protocol probe (PROTOCOL.md only): a subscriber on every shard, a publisher, each
# subscriber must get the message. Usage: pubsub_probe.py PORT
import socket, struct
import sys
ADDR = ("127.0.0.1", int(sys.argv[1]))
def frame(op, fixed=b"", topic=b"", payload=b"", op_id=0):
    body = struct.pack("<BBHII", op, 0, len(topic), 0, op_id) + fixed + topic + payload
    return struct.pack("<I", len(body)) + body
def read_frame(s, buf):
    while True:
        if len(buf) >= 4:
            n = struct.unpack_from("<I", buf)[0] + 4
            if len(buf) >= n:
                f = bytes(buf[:n]); del buf[:n]; return f
        chunk = s.recv(65536)
        if not chunk: raise EOFError("closed")
        buf.extend(chunk)
def connect():
    s = socket.create_connection(ADDR, timeout=10); buf = bytearray()
    s.sendall(frame(0x01, struct.pack("<HH", 1, 0)))
    f = read_frame(s, buf); assert f[4] == 0x02, f
    shard = struct.unpack_from("<H", f, 18)[0]
    return s, buf, shard
subs = {}
for _ in range(40):
    s, buf, shard = connect()
    if shard in subs: s.close(); continue
    s.sendall(frame(0x11, struct.pack("<Q", 1), b"idle.test") + frame(0x03, op_id=9))
    while read_frame(s, buf)[4] != 0x04: pass
    subs[shard] = (s, buf)
pub, pbuf, pshard = connect()
pub.sendall(frame(0x10, topic=b"idle.test", payload=b"hello after idle") + frame(0x03, op_id=7))
for shard, (s, buf) in sorted(subs.items()):
    while True:
        f = read_frame(s, buf)
        if f[4] == 0x13: print(f"shard {shard} subscriber got: {f[-16:].decode()}"); break
print(f"publisher on shard {pshard}; subscribers on shards {sorted(subs)}")
