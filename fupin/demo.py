"""`fupin demo`: load a generated county year through the gateway as its people would, wait for
the assessment to catch up, and print the leading group's view."""
import itertools
import re
import sys
import threading
import time
import unicodedata
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor, wait

import click
import requests

from .demo_county import AS_OF, CLOSED_MONTHS, YEAR, generate
from .demo_sprint import print_campaign

GATEWAY = "http://127.0.0.1:8000"
ADMIN_PASSWORD_DEFAULT = "fupin-admin"
USER_PASSWORD = "demo-password-2023"
HOLE = re.compile(r"\{([a-z]+\d+)\}")
PATH_ID = re.compile(r"^/api/v1/[a-z-]+/([^/]+)/")
CREATED_ID = {"/api/v1/households": "household_id", "/api/v1/loans": "loan_id", "/api/v1/pairings": "pairing_id"}
CADRE_CHAINED = ("/api/v1/stationings", "/api/v1/residency-reports")
PROJECTS_NEED = ("townships", "villages")  # the steps a department's projects refer to


class Loader:
    def __init__(self, base, admin_password, workers=16, cadre_accounts=True):
        self.base = base
        self.refs = {}
        self.tokens = {}
        self.failures = []
        self.sent = 0
        self.lock = threading.Lock()
        self.workers = workers
        self.cadre_accounts = cadre_accounts  # False: the admin sends the cadres' own work
        self.session = requests.Session()
        self.session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=workers, pool_maxsize=workers * 3))
        self.tokens["admin"] = self.sign_in("admin", admin_password)
        self.signing_up = {}  # username -> future of the user's creation and first sign-in
        self.user_pool = None

    def sign_in(self, username, password):
        response = self.session.post(f"{self.base}/api/v1/auth/token", json={"username": username, "password": password},
                                     timeout=60)
        if response.status_code != 200:
            raise click.ClickException(f"cannot sign in as {username}: {response.status_code} {response.text}")
        return response.json()["access_token"]

    def fill(self, value):
        if isinstance(value, str):
            return HOLE.sub(lambda m: self.refs[m.group(1)], value)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value

    def send(self, username, request, key):
        method, path, body, ref = request
        try:
            path, body = self.fill(path), self.fill(body)
        except KeyError as missing:  # an earlier request it depends on failed
            with self.lock:
                self.failures.append((path, f"skipped: {missing} was not created"))
            return
        response = self.session.request(method, self.base + path, json=body, timeout=120, headers={
            "Authorization": f"Bearer {self.token(username)}", "Idempotency-Key": key})
        with self.lock:
            self.sent += 1
            if response.status_code >= 300:
                self.failures.append((f"{method} {path}", f"{response.status_code} {response.text[:300]}"))
            elif ref:
                data = response.json()
                self.refs[ref] = data[CREATED_ID[path]]

    def create_users(self, users):
        """Start creating the users (and signing each in once) in the background, in the order
        given: each costs two argon2 hashes on the gateway (~0.4 s of CPU), so the county's
        first steps are sent meanwhile, and a request waits only for its own sender's token."""
        def create(user):
            username, role, scope = user
            response = self.session.post(f"{self.base}/api/v1/users", timeout=120,
                                         headers={"Authorization": f"Bearer {self.tokens['admin']}"},
                                         json={"username": username, "password": USER_PASSWORD, "role": role, "scope": scope})
            if response.status_code not in (201, 409):
                raise click.ClickException(f"cannot create user {username}: {response.text}")
            token = self.sign_in(username, USER_PASSWORD)
            self.tokens[username] = token
            return token

        # two at a time: the gateway hashes in its thread pool, one per core
        self.user_pool = ThreadPoolExecutor(2)
        for user in users:
            self.signing_up[user[0]] = self.user_pool.submit(create, user)

    def token(self, username):
        token = self.tokens.get(username)
        return token if token is not None else self.signing_up[username].result()

    def users_created(self):
        """Wait for every user (raising the first failure)."""
        for future in self.signing_up.values():
            future.result()
        if self.user_pool is not None:
            self.user_pool.shutdown()

    def run_step(self, index, title, sender, step_requests, show_progress=True):
        chains = OrderedDict()
        for n, item in enumerate(step_requests):
            if sender == "cadres":
                username, request = (f"cadre-{item[0].lower()}" if self.cadre_accounts else "admin"), item[1]
            else:
                username, request = sender, item
            method, path, body, ref = request
            match = PATH_ID.match(path)
            key = ref or (body.get("project_id") if path == "/api/v1/projects" else None) or (
                match.group(1).strip("{}") if match else None) or (
                # a cadre's residency reports must follow its stationing
                f"cadre:{body['cadre_id']}" if path in CADRE_CHAINED else None) or f"#{n}"
            chains.setdefault(key, []).append((username, request, f"demo-{index}-{n}"))
        total = len(step_requests)
        started = time.perf_counter()
        # this step's own count: `self.sent` also counts the projects lane running beside it
        counter, done = itertools.count(1), [0]

        def run_chain(chain):
            for username, request, key in chain:
                self.send(username, request, key)
                done[0] = next(counter)

        with ThreadPoolExecutor(self.workers) as pool:
            futures = [pool.submit(run_chain, chain) for chain in chains.values()]
            while wait(futures, timeout=0.25).not_done:  # returns as soon as all are done
                if show_progress:
                    progress(f"  {title}: {done[0]}/{total}")
            for future in futures:
                future.result()
        elapsed = time.perf_counter() - started
        if show_progress:
            progress(f"  {title}: {total}/{total} in {elapsed:.1f}s\n")
        else:
            progress(f"  {title}: {total}/{total} in {elapsed:.1f}s (beside the steps above)\n")

    def run_steps(self, steps):
        """Every step in order, except the departments' projects: they need only the townships
        and villages, and the projects service works through them on the other core while the
        registry and assistance take the households, pairings and visits. The months are closed
        (the last step) once both lanes are done."""
        steps = list(enumerate(steps))
        projects = [(index, step) for index, step in steps if step[1].startswith("dept-")]
        rest = [(index, step) for index, step in steps if not step[1].startswith("dept-")]
        *before_closing, closing = rest
        lane, beside = None, ThreadPoolExecutor(1)

        def run_projects():
            for index, (title, sender, step_requests) in projects:
                self.run_step(index, f"{title} [{sender}]", sender, step_requests, show_progress=False)

        done = set()
        for index, (title, sender, step_requests) in before_closing:
            self.run_step(index, f"{title} [{sender}]", sender, step_requests)
            done.add(title)
            if lane is None and done >= set(PROJECTS_NEED):
                lane = beside.submit(run_projects)
        (lane or beside.submit(run_projects)).result()
        beside.shutdown()
        index, (title, sender, step_requests) = closing
        self.run_step(index, f"{title} [{sender}]", sender, step_requests)


def progress(text):
    sys.stdout.write("\r" + text.ljust(70))
    sys.stdout.flush()


def width(text):
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(text))


def table(headers, rows):
    widths = [max(width(h), *(width(r[i]) for r in rows)) if rows else width(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(str(c) + " " * (w - width(c)) for c, w in zip(cells, widths))  # noqa: E731
    click.echo(line(headers))
    click.echo("  ".join("─" * w for w in widths))
    for row in rows:
        click.echo(line(row))


def wait_for_assessment(loader, subject_count, timeout=120):
    """Scores are stable and every unit has one: assessment has consumed everything."""
    headers = {"Authorization": f"Bearer {loader.tokens['admin']}"}
    previous, deadline = None, time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = loader.session.get(f"{loader.base}/api/v1/scores/cadre", headers=headers, timeout=120,
                                      params={"period": str(YEAR), "as_of": AS_OF.isoformat(), "limit": 500})
        if response.ok:
            items = response.json()["items"]
            snapshot = [(i["subject_id"], i["score"]) for i in items]
            if previous == snapshot and len(items) >= min(subject_count, 500):  # one page of at most 500
                return
            previous = snapshot
        progress(f"  waiting for the assessment to catch up ({len(previous or [])} cadres scored)")
        time.sleep(2)
    click.echo("\n  (the assessment is still catching up; the figures below may be partial)")


def run(households=389, cadres=100, seed=2023, base=GATEWAY, admin_password=None, cadre_accounts=True):
    import os

    admin_password = admin_password or os.environ.get("FUPIN_ADMIN_PASSWORD", ADMIN_PASSWORD_DEFAULT)
    started = time.perf_counter()
    county = generate(seed, households, cadres)
    s = county.summary
    click.echo(f"\nGenerated county (seed {seed}): {s['households']} households, {s['people']} people, "
               f"{s['cadres']} cadres, {s['projects']} projects, {s['loans']} loans ({s['loan_total']} yuan); "
               f"{s['requests']} requests to send.")
    loader = Loader(base, admin_password, cadre_accounts=cadre_accounts)
    if not cadre_accounts:
        county.users = [user for user in county.users if user[1] != "cadre"]
    click.echo(f"Creating {len(county.users)} users (stations, departments, cadres, credit union, leading group) "
               "while the county is loaded ...")
    loader.create_users(county.users)
    loader.run_steps(county.steps)
    loader.users_created()
    click.echo(f"Loaded {loader.sent} requests in {time.perf_counter() - started:.0f}s; "
               f"{len(loader.failures)} refused.")
    for where, why in loader.failures[:10]:
        click.echo(f"  refused: {where}: {why}")
    wait_for_assessment(loader, cadres)
    print_view(loader, county)
    click.echo(f"\nDemo finished in {time.perf_counter() - started:.0f}s.")
    return loader


def print_pay_sheet(get, month):
    """The closed month's pay sheet: its first rows (by unit and name), every cadre withheld,
    rewarded or graded poor, and the totals."""
    sheet = get(f"/api/v1/periods/{month}/pay-sheet", scored=False, format="json")
    rows = sheet["rows"]
    click.echo(f"\n== Pay sheet {month} (closed on {sheet['closed_on']}, rulebook v{sheet['rulebook_version']}; "
               f"{len(rows)} cadres) ==")
    notable = [r for r in rows if r["withheld"] != "0.00" or r["rewards"] != "0.00" or r["grade"] == "poor"]
    shown = rows[:8] + [r for r in notable if r not in rows[:8]]
    table(["cadre", "name", "unit", "score", "grade", "pay", "rewards", "withheld", "total", "restrictions"],
          [[r["cadre_id"], r["cadre"], r["unit"], "—" if r["score"] is None else f"{r['score']:.2f}", r["grade"] or "—",
            r["performance_pay"], r["rewards"], r["withheld"], r["total"], "、".join(r["restrictions"])] for r in shown])
    t = sheet["totals"]
    click.echo(f"  … totals for all {t['cadres']} cadres: performance pay {t['performance_pay']}, rewards {t['rewards']}, "
               f"withheld {t['withheld']}, to pay {t['total']} yuan")
    report = get(f"/api/v1/periods/{month}", scored=False)
    click.echo(f"  {month} is {report['status']}; {len(report.get('late_corrections', []))} late corrections. "
               f"CSV/XLSX: /api/v1/periods/{month}/pay-sheet?format=csv|xlsx")


def print_view(loader, county):
    headers = {"Authorization": f"Bearer {loader.tokens['leading-group']}"}
    params = {"period": str(YEAR), "as_of": AS_OF.isoformat(), "limit": 500}

    def get(path, scored=True, **extra):
        query = {**(params if scored else {}), **extra}
        response = loader.session.get(loader.base + path, headers=headers, params=query, timeout=120)
        response.raise_for_status()
        return response.json()

    def row(item):
        veto = "否决 " + "; ".join(item.get("veto_reasons") or []) if item.get("vetoed") else ""
        score = "—" if item.get("score") is None else f"{item['score']:.2f}"
        return [item.get("rank") or "—", item["subject_id"], item.get("name") or "", score, item.get("grade") or "—", veto]

    click.echo(f"\n== Units, {YEAR} as of {AS_OF} ==")
    units = get("/api/v1/scores/unit")
    table(["rank", "unit", "name", "score", "grade", "veto"], [row(i) for i in units["items"]])
    cadres = get("/api/v1/scores/cadre")["items"]
    click.echo(f"\n== Cadres: top 10 and bottom 5 of {len(cadres)} (rulebook v{units.get('rulebook_version')}) ==")
    shown = cadres[:10] + ([["…"] * 6] if len(cadres) > 15 else []) + cadres[-5:] if len(cadres) > 15 else cadres
    table(["rank", "cadre", "name", "score", "grade", "veto"], [r if isinstance(r, list) else row(r) for r in shown])
    print_pay_sheet(get, CLOSED_MONTHS[-1][0])
    click.echo(f"\n== Loan recovery by township, {YEAR} ==")
    rows = []
    for township_id in county.townships:
        recovery = get(f"/api/v1/townships/{township_id}/recovery", scored=False, year=YEAR)
        rate = recovery.get("rate")
        rows.append([township_id, recovery.get("principal_due"), recovery.get("principal_repaid_on_time"),
                     "—" if rate is None else f"{float(rate) * 100:.1f} %", recovery.get("recommendation")])
    table(["township", "principal due", "repaid on time", "rate", "recommendation"], rows)
    print_campaign(get, table)
    click.echo(f"""
Where to look next:
  API and docs     {loader.base}/api/v1/openapi.json
  sign in          curl -s -XPOST {loader.base}/api/v1/auth/token -H 'Content-Type: application/json' \\
                     -d '{{"username":"leading-group","password":"{USER_PASSWORD}"}}'
  a cadre's score  curl -s '{loader.base}/api/v1/scores/cadre/C001?period={YEAR}&as_of={AS_OF}' -H "Authorization: Bearer $TOKEN"
  weekly bulletin  curl -s '{loader.base}/api/v1/bulletins/weekly?week={YEAR}-W48&format=csv' -H "Authorization: Bearer $TOKEN"
  pay sheet        curl -s '{loader.base}/api/v1/periods/{CLOSED_MONTHS[-1][0]}/pay-sheet?format=xlsx' -H "Authorization: Bearer $TOKEN" -o pay.xlsx
  the sprint       {loader.base}/ui/#/campaigns/sprint-2023?as_of=2023-09-30 and #/ledger (or GET /api/v1/campaigns/sprint-2023)
  every user of the demo has the password {USER_PASSWORD} (admin: $FUPIN_ADMIN_PASSWORD); stop with `make down`.""")
