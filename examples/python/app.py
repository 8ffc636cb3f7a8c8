#!/usr/bin/env python3
"""A Python service that uses meshreg through its local agent (Consul's HTTP API), standard library only.

It serves /health, registers itself with an HTTP health check, discovers a peer service, then watches
that peer with a blocking query and exits once the peer's list changes.

    MESHREG_AGENT=http://127.0.0.1:8500 SERVICE=py-app PEER=peer python3 app.py
"""
import http.server
import json
import os
import threading
import urllib.request

AGENT = os.environ.get("MESHREG_AGENT", "http://127.0.0.1:8500")
SERVICE = os.environ.get("SERVICE", "py-app")
PEER = os.environ.get("PEER", "peer")


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(AGENT + path, data=data, method=method)
    with urllib.request.urlopen(req, timeout=120) as res:
        text = res.read().decode()
        return res.headers.get("X-Consul-Index", "0"), (json.loads(text) if text else None)


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    service_id = SERVICE + "-1"
    call("PUT", "/v1/agent/service/register", {
        "Name": SERVICE, "ID": service_id, "Address": "127.0.0.1", "Port": port,
        "Check": {"HTTP": "http://127.0.0.1:%d/health" % port, "Interval": "1s", "Timeout": "1s"},
    })
    print("registered %s on port %d" % (service_id, port), flush=True)

    index, peers = "0", []
    while not peers:  # discover: block until the peer has a passing instance
        index, peers = call("GET", "/v1/health/service/%s?passing&index=%s&wait=10s" % (PEER, index))
    addr = peers[0]["Service"]["Address"] or peers[0]["Node"]["Address"]
    print("discovered %s at %s:%d" % (PEER, addr, peers[0]["Service"]["Port"]), flush=True)

    seen = len(peers)
    while True:  # watch: each blocking query returns when the index moves
        index, peers = call("GET", "/v1/health/service/%s?passing&index=%s&wait=10s" % (PEER, index))
        if len(peers) != seen:
            print("%s changed: %d instances" % (PEER, len(peers)), flush=True)
            break

    call("PUT", "/v1/agent/service/deregister/" + service_id)
    print("deregistered " + service_id, flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
