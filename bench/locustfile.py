"""Load through the gateway (issue 17): commands, single score reads, ranking pages, as a county's
users would send them at once. Kept with the benches; run headless with CSV out:

    .venv/bin/fupin demo --fresh --cadres 2000 --households 7780     # the county, scaled
    .venv/bin/locust -f bench/locustfile.py --headless -u 16 -r 16 -t 3m \\
        --host http://127.0.0.1:8000 --csv bench/results/locust_2000 --only-summary

Each user signs in as the county admin (FUPIN_ADMIN_PASSWORD, default the demo's), learns the
county's cadres and households once, then sends, by weight: income assessments
(`POST /households/{id}/income`, the command path), a cadre's visit to a paired household
(`POST /visits`, the event that changes scores), one cadre's score (`GET /scores/cadre/{id}`)
and the first page of the cadre ranking (`GET /scores/cadre`). Locust's CSV gives requests/s,
p50/p95/p99 per name; the names below are the rows of bench/README's table. `--tags commands`
sends only the commands, `--tags score` only single score reads, `--tags reads` both reads:
what each path carries when it has the machine to itself.
"""
import datetime
import itertools
import os
import random
import threading
import uuid

from locust import HttpUser, between, tag, task

PERIOD = os.environ.get("FUPIN_LOAD_PERIOD", "2023")
AS_OF = os.environ.get("FUPIN_LOAD_AS_OF", "2023-12-31")
ADMIN_PASSWORD = os.environ.get("FUPIN_ADMIN_PASSWORD", "fupin-admin")
_county: dict = {}
_county_lock = threading.Lock()
_incomes = itertools.count(1)
PAIRED_CADRES = 200


def _learn_county(client, headers):
    """Cadre and household ids, fetched by the first user and shared by all."""
    with _county_lock:
        if _county:
            return _county
        cadres = [item["subject_id"] for item in client.get(
            f"/api/v1/scores/cadre?period={PERIOD}&as_of={AS_OF}&limit=500", headers=headers,
            name="setup: cadre ids").json()["items"]]
        households, cursor = [], None
        while len(households) < 2000:
            page = client.get("/api/v1/households?limit=200" + (f"&cursor={cursor}" if cursor else ""),
                              headers=headers, name="setup: household ids").json()
            households += [item["household_id"] for item in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        pairings = []  # (cadre, household) of the first cadres, for visits
        for cadre in cadres[:PAIRED_CADRES]:
            answer = client.get(f"/api/v1/cadres/{cadre}", headers=headers, name="setup: cadre pairings").json()
            pairings += [(cadre, p["household_id"]) for p in answer.get("pairings", []) if p.get("active")]
        _county.update(cadres=cadres, households=households, pairings=pairings)
        return _county


class CountyUser(HttpUser):
    wait_time = between(0, 0.05)

    def on_start(self):
        token = self.client.post("/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD},
                                 name="setup: sign in").json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}
        self.county = _learn_county(self.client, self.headers)

    @tag("commands")
    @task(3)
    def income_assessment(self):
        household = random.choice(self.county["households"])
        amount = 4000 + next(_incomes) % 3000
        self.client.post(f"/api/v1/households/{household}/income", name="command: POST income",
                         json={"year": 2023, "per_capita_income": f"{amount}.00", "assessed_on": "2023-12-20"},
                         headers={**self.headers, "Idempotency-Key": str(uuid.uuid4())})

    @tag("commands")
    @task(1)
    def visit(self):
        """A cadre's visit: the event that changes scores most often (the kept rankings take it
        incrementally: incremental.py)."""
        if not self.county["pairings"]:
            return
        cadre, household = random.choice(self.county["pairings"])
        day = datetime.date(2023, 1, 1) + datetime.timedelta(days=random.randrange(364))
        self.client.post("/api/v1/visits", name="command: POST visit", json={
            "cadre_id": cadre, "household_id": household, "visited_on": day.isoformat(), "measures": ["政策宣讲"],
            "outcome": "收入稳定", "changes": "无", "policy_explained": True},
            headers={**self.headers, "Idempotency-Key": str(uuid.uuid4())})

    @tag("reads", "score")
    @task(6)
    def one_cadre_score(self):
        cadre = random.choice(self.county["cadres"])
        self.client.get(f"/api/v1/scores/cadre/{cadre}?period={PERIOD}&as_of={AS_OF}", headers=self.headers,
                        name="read: GET one cadre's score")

    @tag("reads")
    @task(1)
    def ranking_page(self):
        self.client.get(f"/api/v1/scores/cadre?period={PERIOD}&as_of={AS_OF}&limit=50", headers=self.headers,
                        name="read: GET cadre ranking page")
