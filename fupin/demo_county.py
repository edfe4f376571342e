"""A deterministic county year (2023) at the scale of seeds 000 and 002, as API requests.

`generate(seed, households, cadres)` returns a `County`: every request the county's people
would send through the gateway, grouped by who sends it, in an order the rules accept. The
same seed gives the same county. Figures follow the seeds: 5 townships, 13 villages (6 poor),
389 households with 1,045 people, 5 transport units with 100 cadres, 98.15 % visit compliance
(seed 003), 141 village roads of 123.125 km, 20 major repairs of 75.874 km, 23 bridges and 59
safety projects worth 108.15265 M yuan (seed 002), 40 household loans worth 1.32 M yuan (003).
"""
import calendar
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from services.common.values import add_months, money

from .demo_sprint import sprint

YEAR = 2023
AS_OF = date(YEAR, 12, 31)

TOWNSHIPS = [("T01", "城关镇"), ("T02", "东风镇"), ("T03", "龙泉乡"), ("T04", "青山乡"), ("T05", "石门乡")]
VILLAGES = [  # (village_id, township_id, name, poor_village)
    ("V01", "T01", "新民村", False), ("V02", "T01", "红旗村", True), ("V03", "T01", "河西村", False),
    ("V04", "T02", "东坪村", True), ("V05", "T02", "杨柳村", False), ("V06", "T02", "桃源村", False),
    ("V07", "T03", "龙井村", True), ("V08", "T03", "水口村", False), ("V09", "T04", "青峰村", True),
    ("V10", "T04", "竹园村", False), ("V11", "T04", "高山村", True), ("V12", "T05", "石桥村", True),
    ("V13", "T05", "白岩村", False),
]
UNITS = [  # seed 000: 交通运输局 and the units under it
    ("U01", "县交通运输局", None), ("U02", "县公路局", "U01"), ("U03", "县运管所", "U01"),
    ("U04", "县乡公路管理局", "U01"), ("U05", "县机动车检测线", "U01"),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国红梅玉兰德福海林春生金凤长江小平建华志强永红淑珍国庆"
CAUSES = ["illness", "disability", "schooling", "disaster", "lack_of_land", "lack_of_water", "lack_of_skills",
          "lack_of_labour", "lack_of_capital", "poor_transport", "lack_of_motivation"]
CAUSE_WEIGHTS = [30, 14, 10, 4, 5, 4, 12, 9, 8, 3, 1]
COUNTY_CODE = "431222"  # a six-digit administrative division code


def id_number(birth, sequence, female):
    """A valid 18-character resident ID (GB 11643): region, birth date, the three-digit order code
    (odd for a man, even for a woman), check digit. `sequence` numbers the people of one birth
    date and sex (0..499), so two people never share a number."""
    order = (sequence % 500) * 2 + (0 if female else 1)
    body = f"{COUNTY_CODE}{birth:%Y%m%d}{order:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]
    return body + check


def split_total(rng, total, parts, spread=0.5):
    """`parts` positive Decimals summing exactly to `total` (two decimals)."""
    weights = [1 + rng.uniform(-spread, spread) for _ in range(parts)]
    scale = Decimal(total) / Decimal(str(sum(weights)))
    amounts = [(Decimal(str(w)) * scale).quantize(Decimal("0.01")) for w in weights]
    amounts[-1] += Decimal(total) - sum(amounts)
    return amounts


def split_sizes(rng, people, households):
    """Household sizes between 1 and 6 adding up to `people`."""
    sizes = [max(1, min(6, round(rng.gauss(people / households, 1.1)))) for _ in range(households)]
    while sum(sizes) != people:
        i = rng.randrange(households)
        if sum(sizes) > people and sizes[i] > 1:
            sizes[i] -= 1
        elif sum(sizes) < people and sizes[i] < 6:
            sizes[i] += 1
    return sizes


def random_day(rng, year, month, last=None):
    days = calendar.monthrange(year, month)[1]
    return date(year, month, rng.randint(1, min(days, last or days)))


@dataclass
class County:
    """Requests by sender. Each request is (method, path, body, ref) — `ref` names a result to
    remember (e.g. the household_id a later request needs) and paths may hold {ref} holes."""
    townships: list = field(default_factory=list)
    users: list = field(default_factory=list)  # (username, role, scope)
    steps: list = field(default_factory=list)  # (title, sender username, [requests]), in order
    summary: dict = field(default_factory=dict)


def generate(seed=2023, households=389, cadres=100, people=None):
    people = people or max(households, round(households * 1045 / 389))
    draft = Draft(rng=random.Random(seed), county=County(townships=[t for t, _ in TOWNSHIPS]),
                  households=households, cadres=cadres, people=people)
    for section in SECTIONS:
        section(draft)
    county = draft.county
    county.summary = {
        "townships": len(TOWNSHIPS), "villages": len(VILLAGES), "poor_villages": sum(1 for v in VILLAGES if v[3]),
        "households": households, "people": people, "units": len(UNITS), "cadres": cadres,
        **draft.counts, "requests": sum(len(requests) for _, _, requests in county.steps),
    }
    return county


@dataclass
class Draft:
    """A county being drawn. The sections run in `SECTIONS` order and draw from one random stream,
    so a section added at the end leaves every earlier request as it was; what a later section
    needs from an earlier one (the households, the cadres, the pairings) is kept here."""
    rng: random.Random
    county: County
    households: int
    cadres: int
    people: int
    household_refs: list = field(default_factory=list)  # (ref, village_id, township_id, [labour of each member])
    cadre_rows: list = field(default_factory=list)  # (cadre_id, unit_id, rank)
    pair_of: dict = field(default_factory=dict)  # household ref -> cadre_id
    counts: dict = field(default_factory=dict)  # figures for the summary, by the section that knows them
    born: dict = field(default_factory=dict)  # (birth date, female) -> people drawn so far: the ID order code

    @property
    def scale(self):
        return self.households / 389

    def step(self, title, sender, requests):
        self.county.steps.append((title, sender, requests))

    def person_name(self, surname=None):
        rng = self.rng
        return (surname or rng.choice(SURNAMES)) + rng.choice(GIVEN) + rng.choice(GIVEN)


def unit_of_village(n):
    """The unit the n-th village is assigned to (round robin over the units)."""
    return UNITS[n % len(UNITS)][0]


# -- the county itself (admin) -------------------------------------------------------------------------
def county_and_users(draft):
    draft.step("townships", "admin",
               [("POST", "/api/v1/townships", {"township_id": t, "name": n}, None) for t, n in TOWNSHIPS])
    draft.step("villages", "admin",
               [("POST", "/api/v1/villages", {"village_id": v, "township_id": t, "name": n, "poor_village": p}, None)
                for v, t, n, p in VILLAGES])
    users = draft.county.users
    for township_id, _ in TOWNSHIPS:
        users.append((f"station-{township_id.lower()}", "township", {"township_id": township_id}))
    for department in ("transport", "water", "power"):
        users.append((f"dept-{department}", "department", {"department": department}))
    users += [("credit-union", "credit_union", {}), ("leading-group", "leading_group", {}), ("inspector", "inspector", {})]


# -- households, by the township stations ---------------------------------------------------------------
def household_register(draft):
    rng = draft.rng
    sizes = split_sizes(rng, draft.people, draft.households)
    station_requests = {t: [] for t, _ in TOWNSHIPS}
    for n, size in enumerate(sizes):
        village_id, township_id, _, _ = VILLAGES[n % len(VILLAGES)] if n < len(VILLAGES) else rng.choice(VILLAGES)
        ref = f"hh{n:04d}"
        surname = rng.choice(SURNAMES)
        head_birth = date(rng.randint(1950, 1990), rng.randint(1, 12), rng.randint(1, 28))
        head_name = surname + rng.choice(GIVEN) + rng.choice(GIVEN)
        causes = sorted(set(rng.choices(CAUSES, CAUSE_WEIGHTS, k=rng.choice((1, 1, 2)))))
        requests = [("POST", "/api/v1/households", {
            "household_no": f"{COUNTY_CODE}{township_id[1:]}{n + 1:05d}", "village_id": village_id,
            "head_name": head_name, "poverty_causes": causes, "registered_on": "2022-12-01"}, ref)]
        members = []
        for m in range(size):
            body = _member(draft, m, surname, head_name, head_birth)
            members.append(body["labor_capacity"])
            requests.append(("POST", f"/api/v1/households/{{{ref}}}/members", body, None))
        station_requests[township_id].extend(requests)
        draft.household_refs.append((ref, village_id, township_id, members))
    for township_id, requests in station_requests.items():
        draft.step(f"households of {township_id}", f"station-{township_id.lower()}", requests)


def _member(draft, m, surname, head_name, head_birth):
    """The body of the m-th member of a household (the head first)."""
    rng = draft.rng
    if m == 0:
        name, birth, relation, female = head_name, head_birth, "head", rng.random() < 0.2
    else:
        relation = "spouse" if m == 1 else rng.choice(("child", "child", "parent", "grandchild"))
        offset = {"spouse": rng.randint(-5, 5), "child": rng.randint(20, 35), "parent": -rng.randint(20, 30),
                  "grandchild": rng.randint(40, 55)}[relation]
        year = min(max(head_birth.year + offset, 1935), 2020)
        birth = date(year, rng.randint(1, 12), rng.randint(1, 28))
        female = rng.random() < 0.5
        name = draft.person_name(surname if relation != "spouse" else None)
    age = YEAR - birth.year
    labor = "none" if age < 16 or age > 70 else rng.choices(("full", "weak", "none"), (70, 20, 10))[0]
    health = rng.choices(("healthy", "chronic", "serious_illness", "disabled"), (70, 18, 6, 6))[0]
    order = draft.born[birth, female] = draft.born.get((birth, female), -1) + 1
    return {"name": name, "id_number": id_number(birth, order, female), "relation": relation,
            "birth_date": birth.isoformat(), "sex": "female" if female else "male",
            "labor_capacity": labor, "health": health}


def income_and_exits(draft):
    """Income and assurances; about 40 % meet every condition and exit in December."""
    rng = draft.rng
    exits = {t: [] for t, _ in TOWNSHIPS}
    assessments = {t: [] for t, _ in TOWNSHIPS}
    exited = 0
    for ref, _, township_id, _ in draft.household_refs:
        will_exit = rng.random() < 0.4
        income = rng.randint(4300, 9000) if will_exit else rng.choice((rng.randint(2500, 3900), rng.randint(4100, 7000)))
        assessments[township_id].append(("POST", f"/api/v1/households/{{{ref}}}/income", {
            "year": YEAR, "per_capita_income": money(income), "assessed_on": "2023-11-20"}, None))
        housing = rng.choice("AB") if will_exit else rng.choice("ABBCD")
        assessments[township_id].append(("POST", f"/api/v1/households/{{{ref}}}/assurances", {
            "assessed_on": "2023-11-25", "food": True, "clothing": True, "education": True,
            "medical": will_exit or rng.random() < 0.9, "housing_grade": housing,
            "drinking_water": will_exit or rng.random() < 0.85}, None))
        if will_exit:
            exited += 1
            exits[township_id].append(("POST", f"/api/v1/households/{{{ref}}}/exit",
                                       {"year": YEAR, "exited_on": "2023-12-15"}, None))
    for township_id, _ in TOWNSHIPS:
        station = f"station-{township_id.lower()}"
        draft.step(f"income and assurances in {township_id}", station, assessments[township_id])
        draft.step(f"exits in {township_id}", station, exits[township_id])
    draft.counts["exits_planned"] = exited


# -- units, cadres, villages, pairings ------------------------------------------------------------------
def units_and_cadres(draft):
    for title, parents in (("units", False), ("units under a parent unit", True)):  # parents first
        draft.step(title, "admin", [("POST", "/api/v1/units", {"unit_id": u, "name": n, "department": "transport",
                                                               "parent_unit_id": p}, None)
                                    for u, n, p in UNITS if bool(p) == parents])
    per_unit = max(1, draft.cadres // len(UNITS))
    for i in range(draft.cadres):
        unit_id = UNITS[min(i // per_unit, len(UNITS) - 1)][0]
        position = i - (i // per_unit) * per_unit
        rank = "head" if position == 0 else ("leader" if position <= 3 else "staff")
        draft.cadre_rows.append((f"C{i + 1:03d}", unit_id, rank))
    draft.step("cadres", "admin", [("POST", "/api/v1/cadres", {
        "cadre_id": c, "unit_id": u, "name": draft.person_name(), "rank": r, "deputy_section_or_above": r != "staff"},
        None) for c, u, r in draft.cadre_rows])
    draft.step("villages assigned to units", "leading-group", [
        ("POST", f"/api/v1/units/{unit_of_village(n)}/villages", {"village_id": v, "from": "2023-01-01"}, None)
        for n, (v, _, _, _) in enumerate(VILLAGES)])
    draft.county.users += [(f"cadre-{c.lower()}", "cadre", {"cadre_id": c}) for c, _, _ in draft.cadre_rows]


def pairings(draft):
    requests = []
    for n, (ref, _, _, _) in enumerate(draft.household_refs):
        cadre_id = draft.cadre_rows[n % len(draft.cadre_rows)][0]
        draft.pair_of[ref] = cadre_id
        requests.append(("POST", "/api/v1/pairings", {"cadre_id": cadre_id, "household_id": f"{{{ref}}}",
                                                      "from": "2023-01-01"}, None))
    draft.step("every household paired with a cadre", "admin", requests)


# -- a year of work, by the cadres themselves -------------------------------------------------------------
def cadre_work(draft):
    """Each cadre's household visits (a month synced from the phone at once), then the heads' and
    leaders' village visits and quarterly inspections."""
    work_by_cadre = {c: [] for c, _, _ in draft.cadre_rows}
    for (cadre_id, _), visits in sorted(_monthly_visits(draft).items()):
        work_by_cadre[cadre_id].append(("POST", "/api/v1/visits/batch", {"cadre_id": cadre_id, "visits": visits},
                                        None))
    assigned_villages = {u: [] for u, _, _ in UNITS}
    for n, (v, _, _, _) in enumerate(VILLAGES):
        assigned_villages[unit_of_village(n)].append(v)
    for cadre_id, unit_id, rank in draft.cadre_rows:
        if rank in ("head", "leader"):
            work_by_cadre[cadre_id] += _leader_work(draft, cadre_id, rank, assigned_villages[unit_id])
    draft.step("visits, village visits and inspections (cadres)", "cadres", [
        (c, request) for c, requests in work_by_cadre.items() for request in requests])


def _monthly_visits(draft):
    """(cadre, month) -> visit bodies; about 1.85 % of household-months are missed."""
    rng = draft.rng
    monthly = {}
    missed = 0
    for ref, _, _, _ in draft.household_refs:
        cadre_id = draft.pair_of[ref]
        for month in range(1, 13):
            if rng.random() < 0.0185:  # seed 003: 98.15 % of households visited in August
                missed += 1
                continue
            monthly.setdefault((cadre_id, month), []).append({
                "household_id": f"{{{ref}}}", "visited_on": random_day(rng, YEAR, month).isoformat(),
                "measures": [rng.choice(("产业指导", "就业推荐", "政策宣讲", "医疗救助对接", "危房改造跟进"))],
                "outcome": rng.choice(("收入稳定", "务工增收", "产业见效", "问题已反映")),
                "changes": rng.choice(("无", "新增务工一人", "子女入学", "住院治疗")),
                "policy_explained": rng.random() < 0.95})
    draft.counts["missed_visits"] = missed
    draft.counts["visits"] = sum(len(visits) for visits in monthly.values())
    return monthly


def _leader_work(draft, cadre_id, rank, villages):
    rng = draft.rng
    work = []
    needed = 2 if rank == "head" else 4
    for village_id in villages:
        for k in range(needed - (1 if rng.random() < 0.2 else 0)):
            month = min(12, 1 + k * (12 // needed) + rng.randint(0, 12 // needed - 1))
            work.append(("POST", "/api/v1/village-visits", {
                "cadre_id": cadre_id, "village_id": village_id,
                "visited_on": random_day(rng, YEAR, month).isoformat(), "purpose": "督导帮扶工作"}, None))
    for quarter in range(4):
        if rng.random() < 0.9:
            work.append(("POST", "/api/v1/inspections", {
                "cadre_id": cadre_id, "village_id": rng.choice(villages or ["V01"]),
                "inspected_on": random_day(rng, YEAR, quarter * 3 + 2).isoformat(),
                "findings": "走访记录基本完整"}, None))
    return work


def unit_work(draft):
    """Exam scores of every cadre, a first secretary stationed in each poor village, their residency."""
    rng = draft.rng
    work = [("POST", "/api/v1/exam-scores", {"cadre_id": cadre_id, "exam_id": "2023-policy",
                                             "score": rng.randint(62, 100), "taken_on": "2023-06-16"}, None)
            for cadre_id, _, _ in draft.cadre_rows]
    secretaries = []
    for n, (village_id, _, _, poor) in enumerate(VILLAGES):
        if not poor:
            continue
        unit_id = unit_of_village(n)
        cadre_id = next((c for c, u, _ in reversed(draft.cadre_rows) if u == unit_id and c not in secretaries), None)
        if cadre_id is None:  # a small generated county may have too few cadres in the unit
            continue
        secretaries.append(cadre_id)
        work.append(("POST", "/api/v1/stationings", {"cadre_id": cadre_id, "village_id": village_id,
                                                     "role": "first_secretary", "from": "2023-01-01",
                                                     "until": "2023-12-31"}, None))
        for month in range(1, 13):
            days = rng.choice((16, 18, 20, 22, 15, 12)) if rng.random() < 0.9 else rng.randint(8, 14)
            work.append(("POST", "/api/v1/residency-reports", {"cadre_id": cadre_id, "month": f"{YEAR}-{month:02d}",
                                                               "days": days}, None))
    draft.step("exams, work teams and residency", "admin", work)


def awareness_checks(draft):
    rng = draft.rng
    draft.step("policy-awareness spot checks", "inspector", [
        ("POST", "/api/v1/awareness-checks", {"household_id": f"{{{ref}}}",
                                              "checked_on": random_day(rng, YEAR, rng.randint(3, 11)).isoformat(),
                                              "passed": rng.random() < 0.9}, None)
        for ref, _, _, _ in rng.sample(draft.household_refs, min(60, len(draft.household_refs)))])


# -- projects, by the departments -------------------------------------------------------------------------
PROJECT_PLANS = (  # (department, [(category, count, total quantity, unit, total budget)], share of budget paid)
    ("transport", [
        ("village_road", 141, Decimal("123.125"), "km", Decimal("53717350.00")),
        ("road_repair", 20, Decimal("75.874"), "km", Decimal("31250000.00")),
        ("bridge", 23, Decimal("23"), "units", Decimal("17385300.00")),
        ("road_safety", 59, Decimal("59"), "units", Decimal("5800000.00")),
    ], Decimal("0.97")),
    ("water", [("water_supply", 12, Decimal("12"), "units", Decimal("6400000.00"))], Decimal("0.80")),
    ("power", [("grid_upgrade", 8, Decimal("8"), "units", Decimal("4100000.00"))], Decimal("0.96")),
)


def projects(draft):
    rng, scale = draft.rng, draft.scale
    project_no = late_planned = 0
    for department, specs, paid_share in PROJECT_PLANS:
        requests = []
        for category, count, quantity, unit, budget in specs:
            count = max(1, round(count * scale))
            quantities = split_total(rng, quantity, count, 0.4) if unit == "km" else [Decimal(1)] * count
            budgets = split_total(rng, budget * Decimal(str(round(scale, 4))) if scale != 1 else budget, count, 0.4)
            for k in range(count):
                project_no += 1
                code = f"{department[:2].upper()}-{YEAR}-{project_no:03d}"
                village_id, township_id, _, _ = VILLAGES[project_no % len(VILLAGES)]
                project = {
                    "project_id": code, "title": f"{village_id} {category} {k + 1}", "department": department,
                    "category": category, "level": "county" if category in ("road_repair", "bridge") else "township",
                    "township_id": township_id, "village_ids": [village_id], "planned_quantity": str(quantities[k]),
                    "quantity_unit": unit, "budget": money(budgets[k]),
                    "funding_sources": [
                        {"source": "central", "amount": money(budgets[k] * Decimal("0.6"))},
                        {"source": "integrated",
                         "amount": money(budgets[k] - (budgets[k] * Decimal("0.6")).quantize(Decimal("0.01")))}],
                    "plan_year": YEAR}
                project_requests, late = _project_year(draft, project, quantities[k], budgets[k], paid_share)
                requests += project_requests
                late_planned += late
        draft.step(f"{department} projects", f"dept-{department}", requests)
    draft.counts["projects"] = project_no
    draft.counts["late_projects_planned"] = late_planned


def _project_year(draft, project, quantity, budget, paid_share):
    """A project's requests from plan to acceptance, and whether it finishes after its deadline."""
    rng = draft.rng
    code = project["project_id"]
    deadline = date(YEAR, 8, 31) if project["level"] == "county" else date(YEAR, 11, 30)
    requests = [
        ("POST", "/api/v1/projects", project, None),
        ("POST", f"/api/v1/projects/{code}/allocations", {"amount": money(budget), "source": "central",
                                                          "on": "2023-03-01"}, None),
        ("POST", f"/api/v1/projects/{code}/start", {"on": random_day(rng, YEAR, rng.randint(3, 4)).isoformat()}, None),
        ("POST", f"/api/v1/projects/{code}/progress", {
            "reported_on": random_day(rng, YEAR, 6).isoformat(), "percent_complete": rng.randint(30, 60),
            "quantity_done": str((quantity * Decimal("0.4")).quantize(Decimal("0.001"))),
            "problems": rng.choice(("", "雨季影响施工", "材料到位延迟"))}, None),
    ]
    late = rng.random() < 0.08
    finish = deadline + timedelta(days=rng.randint(5, 40)) if late else deadline - timedelta(days=rng.randint(5, 60))
    requests.append(("POST", f"/api/v1/projects/{code}/complete",
                     {"on": finish.isoformat(), "quantity_done": str(quantity)}, None))
    paid = (budget * paid_share).quantize(Decimal("0.01"))
    first = (paid * Decimal("0.5")).quantize(Decimal("0.01"))
    for amount, on in ((first, "2023-06-30"), (paid - first, "2023-09-20")):
        requests.append(("POST", f"/api/v1/projects/{code}/disbursements",
                         {"amount": money(amount), "on": on, "payee": "县路桥建设有限公司"}, None))
    if finish < AS_OF and rng.random() < 0.7:
        requests.append(("POST", f"/api/v1/projects/{code}/accept",
                         {"on": min(AS_OF, finish + timedelta(days=20)).isoformat()}, None))
    return requests, late


# -- loans ----------------------------------------------------------------------------------------------
LOAN_RATE = Decimal("0.0435")
WEAK_TOWNSHIP = "T04"  # the one township whose recovery falls below 90 %


def loans(draft):
    rng = draft.rng
    quota_requests = []  # filled once the loans are drawn: each township's plan covers its loans
    draft.step("loan quotas", "leading-group", quota_requests)
    loan_count = max(1, round(40 * draft.scale))
    amounts = split_total(rng, Decimal("1320000.00") * Decimal(str(round(draft.scale, 4))), loan_count, 0.2)
    eligible = [h for h in draft.household_refs if any(labour in ("full", "weak") for labour in h[3])]
    borrowers = rng.sample(eligible, min(loan_count, len(eligible)))
    station_loans, union_loans, county_approvals = {t: [] for t, _ in TOWNSHIPS}, [], []
    borrowed = {t: Decimal(0) for t, _ in TOWNSHIPS}
    for n, (ref, _, township_id, _) in enumerate(borrowers):
        station, county, union = _loan(draft, f"loan{n:03d}", ref, township_id, amounts[n])
        station_loans[township_id] += station
        county_approvals += county
        union_loans += union
        borrowed[township_id] += amounts[n]
    for township_id, _ in TOWNSHIPS:
        plan = (borrowed[township_id] / 100000).to_integral_value(rounding="ROUND_CEILING") * 100000 + 100000
        quota_requests.append(("POST", "/api/v1/quotas", {"township_id": township_id, "year": YEAR,
                                                          "amount": money(plan)}, None))
    for township_id, requests in station_loans.items():
        draft.step(f"loan applications in {township_id}", f"station-{township_id.lower()}", requests)
    draft.step("county approvals above 20,000 yuan", "leading-group", county_approvals)
    draft.step("credit union decisions, disbursements and repayments", "credit-union", union_loans + [
        ("POST", "/api/v1/subsidy-settlements", {"quarter": f"{YEAR}-Q{q}", "settled_on": _quarter_end(q).isoformat()},
         None) for q in range(1, 5)])
    draft.counts["loans"] = len(borrowers)
    draft.counts["loan_total"] = money(sum(amounts[:len(borrowers)]))


def _loan(draft, loan_ref, ref, township_id, amount):
    """One household loan (扶贫到户贷款: up to 50,000 with county approval above 20,000, seed 003
    第十一条) as the station's, the county's and the credit union's requests."""
    rng = draft.rng
    applied = date(YEAR, 1, 4) + timedelta(days=rng.randint(0, 60))
    application = {"household_id": f"{{{ref}}}", "township_id": township_id, "amount": money(amount),
                   "industry": rng.choice(("tobacco", "sugarcane", "mulberry", "livestock", "off_season_vegetables",
                                           "other_farming")),
                   "term_months": 0, "applied_on": applied.isoformat()}
    station = [
        ("POST", "/api/v1/loans", application, loan_ref),
        ("POST", f"/api/v1/loans/{{{loan_ref}}}/village-review", {"on": (applied + timedelta(days=2)).isoformat(),
                                                                   "passed": True, "note": "村委会评议通过"}, None),
        ("POST", f"/api/v1/loans/{{{loan_ref}}}/township-recommendation", {
            "on": (applied + timedelta(days=rng.choice((4, 5, 6, 7, 12)))).isoformat(), "recommended": True,
            "note": "符合条件"}, None),
    ]
    decided = applied + timedelta(days=rng.choice((14, 16, 18, 30)))
    disbursed = decided + timedelta(days=3)
    term = 12 - disbursed.month  # mature within the year so 2023 recovery has loans due
    application["term_months"] = term
    county = []
    if amount > 20000:
        county.append(("POST", f"/api/v1/loans/{{{loan_ref}}}/county-approval",
                       {"on": (decided - timedelta(days=2)).isoformat(), "approved": True}, None))
    maturity = add_months(disbursed, term)
    # Late repayments only in the weak township, so exactly one township falls below 90 %
    # recovery (the draws are those of the earlier rule, so the rest of the county is unchanged).
    late = township_id == WEAK_TOWNSHIP and rng.random() < 0.5
    if not late:
        rng.random()
    repaid_on = maturity + timedelta(days=rng.randint(10, 25)) if late else maturity - timedelta(days=rng.randint(1, 20))
    interest = (amount * LOAN_RATE * (repaid_on - disbursed).days / 360).quantize(Decimal("0.01"))
    union = [
        ("POST", f"/api/v1/loans/{{{loan_ref}}}/decision", {"on": decided.isoformat(), "approved": True, "reason": ""},
         None),
        ("POST", f"/api/v1/loans/{{{loan_ref}}}/disbursement", {"on": disbursed.isoformat(),
                                                                "annual_rate": str(LOAN_RATE)}, None),
    ]
    if repaid_on <= AS_OF:
        union.append(("POST", f"/api/v1/loans/{{{loan_ref}}}/repayments", {
            "on": repaid_on.isoformat(), "principal": money(amount), "interest": money(interest)}, None))
    return station, county, union


# -- supervision ------------------------------------------------------------------------------------------
def supervision(draft):
    cadre_rows = draft.cadre_rows
    draft.step("supervision ratings and a veto", "leading-group", [
        ("POST", "/api/v1/ratings", {"subject_type": "unit", "subject_id": "U01", "rating": "good", "source": "city",
                                     "rated_on": "2023-07-10"}, None),
        ("POST", "/api/v1/ratings", {"subject_type": "unit", "subject_id": "U03", "rating": "fair", "source": "internal",
                                     "rated_on": "2023-09-12"}, None),
        ("POST", "/api/v1/ratings", {"subject_type": "cadre", "subject_id": cadre_rows[0][0], "rating": "good",
                                     "source": "county", "rated_on": "2023-10-08"}, None),
        ("POST", "/api/v1/ratings", {"subject_type": "cadre", "subject_id": cadre_rows[-1][0], "rating": "poor",
                                     "source": "province", "rated_on": "2023-11-02"}, None),
        ("POST", "/api/v1/vetoes", {"subject_type": "unit", "subject_id": "U05",
                                    "reason": "帮扶户信息造假被省考核组通报", "on": "2023-11-20"}, None),
    ])


# -- the monthly cycle (月度考核定格) ----------------------------------------------------------------------
CLOSED_MONTHS = (("2023-10", "2023-11-06"), ("2023-11", "2023-12-05"))  # (month, closed on)


def monthly_closing(draft):
    """The leading group closes October (a cadre's county 好: a 1,000 reward) and November (a
    cadre's province 差: the month's pay withheld) once their data is in: their scores, grades and
    pay are frozen and give the pay sheet. Draws nothing, so every earlier request is unchanged."""
    draft.step("monthly closing (月度考核定格)", "leading-group", [
        ("POST", f"/api/v1/periods/{month}/close", {"on": closed_on, "note": f"{month} 月度考核定格"}, None)
        for month, closed_on in CLOSED_MONTHS])
    draft.counts["closed_months"] = len(CLOSED_MONTHS)


# The county's sections in the order they are sent (each may use what an earlier one drew).
SECTIONS = (county_and_users, household_register, income_and_exits, units_and_cadres, pairings, cadre_work, unit_work,
            awareness_checks, projects, loans, supervision, sprint,  # sprint: fupin/demo_sprint.py (seed 001)
            monthly_closing)  # last: months are closed once every section's data is in


def _quarter_end(quarter):
    month = quarter * 3
    return date(YEAR, month, calendar.monthrange(YEAR, month)[1])
