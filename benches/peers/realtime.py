"""Realtime (SSE) fan-out for benches/peers/run.py: N subscribers (half u1, half u2), one writer
creating u1 posts at a fixed rate (10% published), deliveries/s, p50/p99 delivery latency and
missing / unexpected deliveries. u1's subscribers should get every post, u2's only the published.
Latency runs from just before the writer's POST to the subscriber reading the frame.
"""
from __future__ import annotations

import http.client, json, threading, time


def _sse(resp, on_event, stop):
    """Reads `event:` / `data:` frames from an http.client response until `stop` is set."""
    ev, data = "message", []
    while not stop.is_set():
        line = resp.readline()
        if not line:
            return
        line = line.decode().rstrip("\r\n")
        if not line:
            if data:
                on_event(ev, "\n".join(data))
            ev, data = "message", []
        elif line.startswith("event:"):
            ev = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


class Sub:
    def __init__(self, srv, user, stop, http):
        self.srv, self.user, self.stop, self.http = srv, user, stop, http
        self.got: dict[str, float] = {}  # title -> receive time
        self.unexpected = 0
        self.ready = threading.Event()
        self.error = None
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def record(self, title):
        if title and title.startswith("rt "):
            if title in self.got:
                self.unexpected += 1  # a duplicate
            self.got[title] = time.time()

    def run(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=60)
            if self.srv.name == "pb":
                c.request("GET", "/api/realtime")
                r = c.getresponse()

                def on(ev, data):
                    d = json.loads(data)
                    if ev == "PB_CONNECT":
                        self.http("POST", self.srv.url("/api/realtime"),
                                  {"clientId": d["clientId"], "subscriptions": ["posts"]},
                                  {"Authorization": self.srv.tokens[self.user]})
                        self.ready.set()
                    elif ev == "posts" and d.get("action") == "create":
                        self.record(d["record"].get("title"))
            else:
                c.request("GET", "/api/realtime?collection=posts&events=create",
                          headers={"Authorization": f"Bearer {self.srv.keys[self.user]}"})
                r = c.getresponse()
                if r.status != 200:
                    raise RuntimeError(f"{r.status}: {r.read()[:500]!r}")
                self.ready.set()

                def on(ev, data):
                    if ev == "create":
                        d = json.loads(data)
                        for k in ("data", "item", "record"):
                            if isinstance(d, dict) and isinstance(d.get(k), dict):
                                d = d[k]
                        self.record(d.get("title") if isinstance(d, dict) else None)
            _sse(r, on, self.stop)
        except Exception as e:  # reported by the caller
            if not self.stop.is_set():
                self.error = repr(e)
            self.ready.set()


def run_realtime(srv, subscribers, rate, duration, http):
    stop = threading.Event()
    subs = [Sub(srv, i % 2, stop, http) for i in range(subscribers)]
    for s in subs:
        s.ready.wait(15)
        if s.error:
            raise RuntimeError(f"{srv.label} subscriber failed: {s.error}")
    time.sleep(1)  # let the subscriptions settle
    sent: dict[str, tuple[float, bool]] = {}
    n = int(rate * duration)
    t0 = time.time()
    for i in range(n):
        if (d := t0 + i / rate - time.time()) > 0:
            time.sleep(d)
        title, pub = f"rt {i}", i % 10 == 0
        b = json.loads(srv.create_body)
        b.update(title=title, status="published" if pub else "draft")
        sent[title] = (time.time(), pub)
        http("POST", srv.url(srv.items), b, srv.auth)
    time.sleep(2)  # drain
    stop.set()
    errors = [s.error for s in subs if s.error]
    lat, missing, unexpected, delivered = [], 0, 0, 0
    for s in subs:
        unexpected += s.unexpected
        for title, (ts, pub) in sent.items():
            should = s.user == 0 or pub
            if title in s.got:
                if should:
                    lat.append((s.got[title] - ts) * 1000)
                    delivered += 1
                else:
                    unexpected += 1
            elif should:
                missing += 1
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
    return {"subscribers": subscribers, "writes": n, "delivered": delivered,
            "deliveries_s": delivered / (n / rate), "p50": pct(0.5), "p99": pct(0.99),
            "missing": missing, "unexpected": unexpected, "errors": errors[:3]}
