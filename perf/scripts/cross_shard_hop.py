# One publish across a shard boundary: p50/p90 of publish -> MSG for each (publisher shard,
# subscriber shard) pair. Usage: python3 perf/scripts/cross_shard_hop.py PORT (a running shardbus
# with 2 shards on 127.0.0.1:PORT). Figures in perf/RESULTS.md.
import socket, struct, time, sys
port=int(sys.argv[1])
def frame(op, fields=b'', topic=b'', payload=b'', op_id=0):
    return struct.pack('<IBBHII', 12 + len(fields) + len(topic) + len(payload), op, 0, len(topic), 0, op_id) + fields + topic + payload
def read_frame(s, buf):
    while True:
        if len(buf) >= 4:
            n = struct.unpack('<I', buf[:4])[0] + 4
            if len(buf) >= n:
                f = bytes(buf[:n]); del buf[:n]; return f
        buf.extend(s.recv(65536))
def conn_on(shard):
    while True:
        s=socket.create_connection(('127.0.0.1',port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(frame(1, struct.pack('<HH', 1, 0))); buf=bytearray(); w=read_frame(s, buf)
        if struct.unpack('<H', w[18:20])[0] == shard: return s, buf
        s.close()
def run(pub_shard, sub_shard, n=3000):
    sub, sbuf = conn_on(sub_shard); pub, pbuf = conn_on(pub_shard)
    sub.sendall(frame(0x11, struct.pack('<Q',1), b'hop') + frame(0x03, op_id=7)); 
    while True:
        f=read_frame(sub, sbuf)
        if f[4]==0x04: break
    lat=[]
    for i in range(n):
        t=time.perf_counter(); pub.sendall(frame(0x10, topic=b'hop', payload=b'x')); read_frame(sub, sbuf); lat.append(time.perf_counter()-t)
        time.sleep(0.0003)
    lat.sort(); print("pub shard %d -> sub shard %d: p50 %.0f us p90 %.0f us" % (pub_shard, sub_shard, lat[n//2]*1e6, lat[n*9//10]*1e6))
run(0,0); run(0,1); run(1,0); run(1,1)
