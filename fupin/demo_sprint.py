"""The demo county's supervision (督查督战): a 100-day sprint modelled on seed 001, the projects'
progress every 旬, and the rectification ledger; and how `fupin demo` prints the campaign view.

Seed 001 (陇县脱贫“摘帽”百日冲刺工作方案, issued 11 June) runs 19 special actions in two phases,
决战决胜 (to the end of August) and 任务清零 (September), each responsible department and town
reporting its targets by Friday 12:00, signed by its head (周通报制度). The demo runs four of
them on its own county, with real targets split by township: roads (十九), housing (十六), village
clinics (十三) and drinking water (十七). Most reports come on Friday morning; the weak township
(T04) is late three times and misses one week, 交通运输局 (U01) is late once. Five problems are
found by supervision, an inspection, a spot check and a third-party assessment: four are
rectified (one after being sent back), one stays open past its deadline.

`sprint(draft)` is one section of demo_county.SECTIONS (it runs last and draws from the same
random stream, so it leaves every earlier request as it was, apart from the 旬 progress reports
it adds to the projects' own chains before their completion).
"""
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

import click

CAMPAIGN = "sprint-2023"
STARTS, ENDS = date(2023, 6, 12), date(2023, 9, 30)
PHASES = [{"name": "决战决胜", "from": "2023-06-12", "until": "2023-08-31"},
          {"name": "任务清零", "from": "2023-09-01", "until": "2023-09-30"}]
TOWNSHIPS = ("T01", "T02", "T03", "T04", "T05")
SLOW = "T04"  # the demo's weak township: late reports, a missed week, slower progress
TOWN_HEADS = {t: f"{t}镇长" for t in TOWNSHIPS}  # a township's head signs; they need not be registered cadres

# (action_id, name, lead, responsible units, [(target_id, name, unit of measure, {township: share} or total,
#   reported by)], [(what, due_on, target_id, quantity)])
ACTIONS = (
    ("a19", "村组道路畅通专项行动", "分管交通运输副县长", ["U01", "all_townships"],
     [("group_roads", "打通通组路", "km", {"T01": 10, "T02": 15, "T03": 12, "T04": 13, "T05": 10}, "townships"),
      ("oil_to_sand", "农村道路“油返砂”", "km", 25, "U01")],
     [("8月底前完成通组路40公里", "2023-08-31", "group_roads", 40),
      ("9月底前打通剩余通组路", "2023-09-30", "group_roads", 60),
      ("8月底前完成“油返砂”20公里", "2023-08-31", "oil_to_sand", 20)]),
    ("a16", "危房改造提质专项行动", "田华锋", ["all_townships"],
     [("houses", "危房改造达到入住条件", "户", {"T01": 8, "T02": 10, "T03": 9, "T04": 12, "T05": 6}, "townships")],
     [("8月底前达到入住条件", "2023-08-31", "houses", 45),
      ("9月底前全部入住", "2023-09-30", None, None)]),
    ("a13", "实施健康扶贫专项行动", "赵强", ["all_townships"],
     [("clinics", "标准化卫生室建成", "个", {"T01": 2, "T02": 3, "T03": 2, "T04": 3, "T05": 2}, "townships")],
     [("8月底前完成标准化卫生室建设", "2023-08-31", "clinics", 12)]),
    ("a17", "农村安全饮水提升专项行动", "李彩芳", ["all_townships"],
     [("water_tests", "出具饮水安全检测报告", "村", {"T01": 3, "T02": 3, "T03": 3, "T04": 2, "T05": 2}, "townships")],
     [("9月底前逐村出具检测报告", "2023-09-30", "water_tests", 13)]),
)
# How far along each reporter is at the end of August (the rest comes in September); T04 lags.
PACE = {"T01": Decimal("0.80"), "T02": Decimal("0.75"), "T03": Decimal("0.70"), "T04": Decimal("0.55"),
        "T05": Decimal("0.85"), "U01": Decimal("0.84")}
LATE = {("T04", "2023-W27"): "2023-07-07T16:30:00", ("T04", "2023-W31"): "2023-08-05T09:10:00",
        ("T04", "2023-W36"): "2023-09-08T15:00:00", ("U01", "2023-W30"): "2023-07-28T14:20:00"}
MISSING = {("T04", "2023-W33")}


def report_weeks():
    """The ISO weeks whose Friday lies within the sprint: a report is due each of them."""
    weeks, friday = [], STARTS + timedelta(days=(4 - STARTS.weekday()) % 7)
    while friday <= ENDS:
        year, number, _ = friday.isocalendar()
        weeks.append((f"{year}-W{number:02d}", friday))
        friday += timedelta(days=7)
    return weeks


def _done(share, pace, friday):
    """Cumulative progress by `friday`: `pace` of the share by 31 August, all of it by 29 September."""
    share = Decimal(share)
    august, last = date(2023, 8, 31), date(2023, 9, 29)
    if friday <= august:
        part = pace * Decimal((friday - STARTS).days) / Decimal((august - STARTS).days)
    else:
        part = pace + (1 - pace) * Decimal((friday - august).days) / Decimal((last - august).days)
    step = Decimal("0.1") if share >= 20 else Decimal(1)
    return min(share, (share * part / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step)


def _text(quantity):
    return format(Decimal(quantity).normalize(), "f")


def sprint(draft):
    county = draft.county
    heads = {unit: cadre for cadre, unit, rank in draft.cadre_rows if rank == "head"}
    county.users += [(f"unit-{u.lower()}", "unit", {"unit_id": u}) for u in ("U01", "U02", "U03")]
    draft.step("the 100-day sprint (seed 001)", "leading-group", [
        ("POST", "/api/v1/campaigns", {"campaign_id": CAMPAIGN, "name": "脱贫攻坚百日冲刺", "starts_on": STARTS.isoformat(),
                                       "ends_on": ENDS.isoformat(), "phases": PHASES}, None)])
    draft.step("its special actions", "leading-group", [
        ("POST", f"/api/v1/campaigns/{CAMPAIGN}/actions", {
            "action_id": action_id, "name": name, "lead": lead, "responsible_units": units, "townships": list(TOWNSHIPS),
            "targets": [{"target_id": t, "name": n, "unit_of_measure": u, "quantity": _text(sum(q.values()) if
                                                                                          isinstance(q, dict) else q),
                         "by_township": {k: _text(v) for k, v in q.items()} if isinstance(q, dict) else {}}
                        for t, n, u, q, _ in targets],
            "milestones": [{"milestone_id": f"m{i + 1}", "what": what, "due_on": due,
                            **({} if target is None else {"target_id": target, "quantity": _text(quantity)})}
                           for i, (what, due, target, quantity) in enumerate(milestones)]}, None)
        for action_id, name, lead, units, targets, milestones in ACTIONS])
    reports, counts = {}, {"reports": 0, "late_reports": 0, "missing_reports": 0}
    for week, friday in report_weeks():
        for reporter in ("U01",) + TOWNSHIPS:
            if (reporter, week) in MISSING:
                counts["missing_reports"] += 1
                continue
            items = []
            for action_id, _, _, _, targets, _ in ACTIONS:
                for target_id, _, _, quantity, by in targets:
                    if by == "townships" and reporter != "U01":
                        share = quantity[reporter]
                    elif by == reporter:
                        share = quantity
                    else:
                        continue
                    items.append({"action_id": action_id, "target_id": target_id,
                                  "progress": _text(_done(share, PACE[reporter], friday)),
                                  "problems": "雨季影响施工" if reporter == SLOW and week == "2023-W31" else ""})
            at = LATE.get((reporter, week)) or datetime.combine(
                friday, time(9 + draft.rng.randint(0, 2), draft.rng.randint(0, 59))).isoformat()
            counts["reports"] += 1
            counts["late_reports"] += (reporter, week) in LATE
            reports.setdefault(reporter, []).append((
                "POST", f"/api/v1/campaigns/{CAMPAIGN}/reports", {
                    "unit_id": reporter, "week": week, "reported_at": at, "items": items,
                    "signed_off_by": heads.get(reporter) or TOWN_HEADS[reporter]}, None))
    for reporter, requests in reports.items():
        draft.step(f"weekly reports of {reporter}", f"unit-{reporter.lower()}" if reporter == "U01"
                   else f"station-{reporter.lower()}", requests)
    _ledger(draft)
    draft.step("milestones met by hand", "leading-group", [
        ("POST", f"/api/v1/campaigns/{CAMPAIGN}/actions/a16/milestones/m2/met", {"on": "2023-09-26"}, None)])
    counts["xun_reports"] = _xun_progress(draft)
    draft.counts.update({f"sprint_{k}": v for k, v in counts.items()})


# (problem_id, source, found_on, description, unit_id, township_id, deadline, finder)
PROBLEMS = (
    ("DC-2023-01", "supervision", "2023-06-20", "通组路建设进度滞后，施工台账不全", "T02", "T02", "2023-07-20", "leading-group"),
    ("DC-2023-02", "inspection", "2023-07-03", "“油返砂”施工路段安全警示标识缺失", "U01", None, "2023-07-31", "inspector"),
    ("DC-2023-03", "spot_check", "2023-08-02", "危房改造户资料与实际住房等级不符", "U02", "T03", "2023-08-25", "inspector"),
    ("DC-2023-04", "third_party", "2023-08-15", "部分贫困户对帮扶措施知晓率偏低", "U03", "T05", "2023-09-15", "leading-group"),
    ("DC-2023-05", "supervision", "2023-08-20", "危房改造进度严重滞后于时序节点", "T04", "T04", "2023-09-10", "leading-group"),
)


def _ledger(draft):
    """Found, measures and closure requests by the responsible party, verified (or sent back) by
    the leading group; DC-2023-04 has measures but no closure: open past its deadline (overdue)."""
    by_finder = {}
    for problem_id, source, found, text, unit, township, deadline, finder in PROBLEMS:
        by_finder.setdefault(finder, []).append(("POST", "/api/v1/problems", {
            "problem_id": problem_id, "source": source, "found_on": found, "description": text, "unit_id": unit,
            "township_id": township, "deadline": deadline, "reference": f"百日冲刺督查 {found}"}, None))
    for finder, requests in by_finder.items():
        draft.step(f"problems found ({finder})", finder, requests)

    def act(problem_id, kind, body):
        return ("POST", f"/api/v1/problems/{problem_id}/{kind}", body, None)

    first = {
        "station-t02": [act("DC-2023-01", "measures", {"on": "2023-07-05", "measures": "增派施工队伍，补齐施工日志和台账"}),
                        act("DC-2023-01", "closure-request", {"on": "2023-07-10"})],
        "unit-u01": [act("DC-2023-02", "measures", {"on": "2023-07-15", "measures": "在施工路段设置警示标志和夜间警示灯"}),
                     act("DC-2023-02", "closure-request", {"on": "2023-07-18"})],
        "unit-u02": [act("DC-2023-03", "measures", {"on": "2023-08-10", "measures": "重新鉴定住房等级，更正档案资料"}),
                     act("DC-2023-03", "closure-request", {"on": "2023-08-12"})],
        "unit-u03": [act("DC-2023-04", "measures", {"on": "2023-09-01", "measures": "组织帮扶干部入户宣讲政策"})],
        "station-t04": [act("DC-2023-05", "measures", {"on": "2023-08-28", "measures": "倒排工期，每户落实一名包抓干部"}),
                        act("DC-2023-05", "closure-request", {"on": "2023-09-06"})],
    }
    for sender, requests in first.items():
        draft.step(f"rectification by {sender}", sender, requests)
    draft.step("verification (销号) by the leading group", "leading-group", [
        act("DC-2023-01", "verify", {"on": "2023-07-12", "accepted": True, "note": "进度已赶上，台账齐全，同意销号"}),
        act("DC-2023-02", "verify", {"on": "2023-07-20", "accepted": False, "note": "K3至K5路段仍未设置，退回整改"}),
        act("DC-2023-03", "verify", {"on": "2023-08-14", "accepted": True, "note": "同意销号"}),
        act("DC-2023-05", "verify", {"on": "2023-09-08", "accepted": True, "note": "已按节点完成，同意销号"})])
    draft.step("rectification again after being sent back", "unit-u01", [
        act("DC-2023-02", "measures", {"on": "2023-07-25", "measures": "K3至K5路段补设警示标志"}),
        act("DC-2023-02", "closure-request", {"on": "2023-07-27"})])
    draft.step("verification of what was sent back", "leading-group", [
        act("DC-2023-02", "verify", {"on": "2023-07-29", "accepted": True, "note": "复查合格，同意销号"})])


def _xun_progress(draft):
    """Each project under way reports its progress every 旬 (000 §二(三)); about one 旬 in
    twenty is missed, and the assessment's report_timeliness shows which. The reports go into
    the project's own chain (its department's request list), in date order before its completion,
    with a percentage that never goes back."""
    rng, added = draft.rng, 0
    for _, sender, requests in draft.county.steps:
        if not sender.startswith("dept-"):
            continue
        found = {}
        for method, path, body, _ in requests:
            parts = path.split("/")
            if len(parts) == 6 and parts[3] == "projects" and parts[5] in ("start", "progress", "complete"):
                found.setdefault(parts[4], {})[parts[5]] = body
        pending = {}
        for code, steps in found.items():
            if not {"start", "complete"} <= set(steps):
                continue
            started, finished = date.fromisoformat(steps["start"]["on"]), date.fromisoformat(steps["complete"]["on"])
            own = steps.get("progress")
            own_day = date.fromisoformat(own["reported_on"]) if own else None
            own_percent = own["percent_complete"] if own else 0
            own_day, own_percent = own_day or started, own_percent if own_day else 0
            reports = []
            for day in _xun_days(started, finished):
                if _xun(day) == _xun(own_day) or rng.random() < 0.05:
                    continue  # the department's own report covers this 旬, or it was missed
                if day < own_day:  # on a straight line to the department's own figure, then on to 99
                    percent = own_percent * (day - started).days / max(1, (own_day - started).days)
                else:
                    percent = own_percent + (99 - own_percent) * (day - own_day).days / max(1, (finished - own_day).days)
                percent = min(99, max(1, round(percent)))
                reports.append((day, ("POST", f"/api/v1/projects/{code}/progress",
                                      {"reported_on": day.isoformat(), "percent_complete": percent,
                                       "problems": ""}, None)))
            pending[code] = reports
            added += len(reports)
        merged = []
        for request in requests:
            parts = request[1].split("/")
            if len(parts) == 6 and parts[4] in pending and parts[5] in ("progress", "complete"):
                day = date.fromisoformat(request[2]["reported_on" if parts[5] == "progress" else "on"])
                while pending[parts[4]] and pending[parts[4]][0][0] < day:
                    merged.append(pending[parts[4]].pop(0)[1])
            merged.append(request)
        requests[:] = merged
    return added


def _xun(day):
    return day.year, day.month, 0 if day.day <= 10 else 1 if day.day <= 20 else 2


def _xun_days(started, finished):
    """A day in each 旬 after the start and before the completion (the 旬's 5th or so day)."""
    days, day = [], started + timedelta(days=1)
    seen = set()
    while day < finished:
        if _xun(day) not in seen and day.day in (5, 15, 25):
            seen.add(_xun(day))
            days.append(day)
        day += timedelta(days=1)
    return days


# --- printing the campaign view ------------------------------------------------------------------

def print_campaign(get, table, as_of="2023-09-30", midway="2023-08-31"):
    """The leading group's campaign view as `fupin demo` prints it (GET /api/v1/campaigns/{id}):
    each target at the end of the first phase (`midway`) and at the end (`as_of`), then the
    milestones, the weekly reports by unit and the ledger as of the end."""
    view = get(f"/api/v1/campaigns/{CAMPAIGN}", scored=False, as_of=as_of)
    then = get(f"/api/v1/campaigns/{CAMPAIGN}", scored=False, as_of=midway)
    click.echo(f"\n== Campaign {view['name']} ({view['starts_on']} – {view['ends_on']}): "
               f"progress on {midway} (end of {then['current_phase'] or '—'}) and on {as_of} ==")
    earlier = {(a["action_id"], t["target_id"]): t for a in then["actions"] for t in a["targets"]}
    rows = []
    for action in view["actions"]:
        for n, target in enumerate(action["targets"]):
            before = earlier[(action["action_id"], target["target_id"])]
            rows.append([action["name"] if n == 0 else "", target["name"], f"{target['quantity']} {target['unit_of_measure']}",
                         f"{before['done']} {_bar(before['percent'])}", f"{target['done']} {_bar(target['percent'], 10)}"])
            shares = {s["township_id"]: s for s in before["by_township"]}
            for share in target["by_township"]:
                rows.append(["", f"  {share['township_id']}", share["quantity"],
                             f"{shares[share['township_id']]['done']} {_bar(shares[share['township_id']]['percent'])}",
                             f"{share['done']} {_bar(share['percent'], 10)}"])
    table(["action", "target", "target qty", f"done {midway}", f"done {as_of}"], rows)
    click.echo(f"\n  Milestones, as of {as_of}:")
    for action in view["actions"]:
        for milestone in action["milestones"]:
            mark = {"met": "✓ met", "missed": "✗ missed", "pending": "… pending"}[milestone["status"]]
            met = f", reached {milestone['met_on']}" if milestone["met_on"] else ""
            click.echo(f"    {mark:<10} {milestone['what']} (due {milestone['due_on']}{met})")
    click.echo("\n  Weekly reports (due Friday 12:00, signed by the unit's head):")
    table(["unit", "due", "on time", "late", "missing"],
          [[u["unit_id"], u["due"], u["on_time"], " ".join(item["week"] for item in u["late"]) or "—",
            " ".join(u["missing"]) or "—"] for u in view["reports"]["units"]])
    problems = get("/api/v1/problems", scored=False, as_of=as_of, limit=50)["items"]
    click.echo(f"\n  Rectification ledger (问题整改台账), as of {as_of}:")
    table(["problem", "unit", "source", "deadline", "status", "closed"],
          [[p["problem_id"], p["unit_id"], p["source"], p["deadline"], p["status"], p["closed_on"] or "—"]
           for p in problems])


def _bar(percent, width=20):
    if percent is None:
        return "—"
    filled = int(round(percent / 100 * width))
    return "█" * filled + "░" * (width - filled) + f" {percent:.1f}%"
