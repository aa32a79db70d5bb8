# The Python side of tests/tls.rs: Debian's python3 `ssl` module (OpenSSL) and
# pymemcache as TLS clients. Usage: client.py MODE PORT CA [CERT KEY]; prints lines.
#   session     text, meta and binary requests over TLS (two connections): each answer
#               hex-encoded on its line, binary CAS fields zeroed (servers number
#               differently)
#   pymemcache  set/get/delete through pymemcache's tls_context: what get returned
#   peer_cert   the hex DER certificate the server presented
#   try         one `version` round trip: `ok <answer>` or `refused <why>`
#   handshake_errors  the `stats` line `ssl_handshake_errors <n>`
import socket
import ssl
import struct
import sys

mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
if len(sys.argv) > 5:
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])


def connect():
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def read_until(s, end, buf=b""):
    while not buf.endswith(end):
        data = s.recv(1 << 16)
        if not data:
            raise EOFError("closed after %r" % buf[-200:])
        buf += data
    return buf


BIG = b"x" * 8000
TEXT = [
    b"set a 0 0 5\r\nhello\r\n",
    b"get a\r\n",
    b"add a 0 0 1\r\nz\r\n",
    b"append a 0 0 3\r\n123\r\n",
    b"get a b\r\n",
    b"set n 7 0 2\r\n10\r\n",
    b"incr n 5\r\ndecr n 100\r\n",
    b"set big 0 0 8000\r\n" + BIG + b"\r\n",
    b"get big\r\n",
    b"touch a 100\r\ndelete a\r\ndelete a\r\n",
    b"mg n v f t\r\n",
    b"ms m 3 T0 F5\r\nabc\r\nmg m v f\r\n",
    b"ma n D3\r\nmg n v\r\nmd m q\r\nmg m v\r\n",
    b"bogus\r\nversionx\r\n",
]


def binary(opcode, key=b"", value=b"", extras=b""):
    body = extras + key + value
    head = struct.pack(">BBHBBHIIQ", 0x80, opcode, len(key), len(extras), 0, 0, len(body), 0, 0)
    return head + body


NOOP = binary(0x0A)
BINARY = [
    binary(0x01, b"bk", b"binary value", struct.pack(">II", 3, 0)),
    binary(0x00, b"bk"),
    binary(0x0C, b"bk"),
    binary(0x00, b"missing"),
    binary(0x04, b"bk"),
    binary(0x00, b"bk"),
]


def binary_answers(s, req):
    s.sendall(req + NOOP)
    buf = b""
    packets = []
    while True:
        while len(buf) < 24:
            data = s.recv(1 << 16)
            if not data:
                raise EOFError("closed")
            buf += data
        total = 24 + struct.unpack(">I", buf[8:12])[0]
        while len(buf) < total:
            buf += s.recv(1 << 16)
        packet, buf = bytearray(buf[:total]), buf[total:]
        packet[16:24] = b"\0" * 8
        if packet[1] == 0x0A:
            return b"".join(packets)
        packets.append(bytes(packet))


if mode == "session":
    out = []
    s = connect()
    for req in TEXT:
        s.sendall(req + b"mn\r\n")
        out.append(read_until(s, b"MN\r\n")[:-4].hex())
    s.close()
    b = connect()
    for req in BINARY:
        out.append(binary_answers(b, req).hex())
    b.close()
    print("\n".join(out))
elif mode == "pymemcache":
    from pymemcache.client.base import Client

    c = Client(("127.0.0.1", port), tls_context=ctx, timeout=10)
    c.set("pk", b"over tls")
    got = c.get("pk")
    c.delete("pk")
    print(got.decode())
    print(c.get("pk"))
elif mode == "peer_cert":
    s = connect()
    print(s.getpeercert(binary_form=True).hex())
elif mode == "try":
    try:
        s = connect()
        s.sendall(b"version\r\n")
        print("ok " + read_until(s, b"\r\n").decode().strip())
    except (ssl.SSLError, OSError, EOFError) as e:
        print("refused " + str(e))
elif mode == "handshake_errors":
    s = connect()
    s.sendall(b"stats\r\n")
    lines = read_until(s, b"END\r\n").decode().split("\r\n")
    print([l[5:] for l in lines if l.startswith("STAT ssl_handshake_errors ")][0])
else:
    sys.exit("unknown mode " + mode)
