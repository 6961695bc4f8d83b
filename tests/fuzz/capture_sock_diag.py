#!/usr/bin/env python3
# Captures the sock_diag seeds in corpus/sock_diag/: a dump of a throw-away namespace holding a
# listener with queued children (one half-closed) and an accepted connection. Run it as root:
#   cd tests/fuzz/corpus && unshare -n python3 ../capture_sock_diag.py
# Each file is the 4-byte sequence number the reader expects, then one datagram as received.
import socket, struct, os
os.system("ip link set lo up")
l = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
l.bind(("::", 30720)); l.listen(2)
cs=[]
for i in range(3):
    c=socket.create_connection(("127.0.0.1",30720)); c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"); cs.append(c)
cs[0].shutdown(socket.SHUT_WR)
a,_=l.accept()
for fam,name in ((socket.AF_INET,"inet"),(socket.AF_INET6,"inet6")):
    n=socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4)
    seq=7
    ext = (1<<(7-1)) | (1<<(2-1))
    req=struct.pack("=BBBBI",fam,socket.IPPROTO_TCP,ext,0,0xffe)+b"\0"*48
    n.send(struct.pack("=IHHII",16+len(req),20,0x301,seq,0)+req)
    k=0
    while True:
        d=n.recv(65536)
        open(f"sock_diag/{name}-{k}.bin","wb").write(struct.pack("=I",seq)+d); k+=1
        if struct.unpack("=IH",d[:6])[1] in (2,3): break
