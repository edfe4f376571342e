/* Labels in Chinese (default) and English. The API speaks codes; the labels are the pages' business. */
(function () {
  "use strict";
  var zh = {
    "app.title": "扶贫考核 · 领导小组",
    "nav.rankings": "考核排名", "nav.progress": "县域进度", "nav.bulletin": "周通报", "nav.signout": "退出",
    "nav.rulebook": "县级规则", "rulebook.hint": "全县规则手册（只读）：每项取值及其生效日期；修改须由管理员或领导小组经接口提出。",
    "rulebook.key": "规则项", "rulebook.value": "现行取值", "rulebook.history": "历次版本",
    "lang.switch": "English",
    "login.title": "登录", "login.username": "用户名", "login.password": "密码", "login.submit": "登录",
    "login.hint": "使用与系统接口相同的账号登录。",
    "login.failed": "登录失败", "login.expired": "登录已过期，请重新登录。",
    "common.period": "考核期", "common.period_hint": "年 2023、季度 2023-Q3 或月份 2023-05",
    "common.as_of": "截至日期", "common.show": "查询", "common.loading": "正在加载…",
    "common.none": "—", "common.print": "打印", "common.back": "返回排名", "common.filter": "筛选",
    "common.all": "全部", "common.search": "名称或编号", "common.error": "出错了",
    "common.no_data": "没有数据。", "common.shown": "显示 {n} / {total} 条",
    "error.401": "未登录或登录已过期", "error.403": "无权查看", "error.404": "未找到",
    "error.400": "输入有误", "error.422": "规则不允许", "error.503": "服务暂不可用", "error.500": "系统错误",
    "error.network": "无法连接服务器",
    "subject.unit": "单位", "subject.cadre": "干部", "subject.township": "乡镇",
    "rank.title": "考核排名", "rank.rank": "名次", "rank.name": "名称", "rank.id": "编号", "rank.score": "得分",
    "rank.grade": "等次", "rank.veto": "一票否决", "rank.department": "部门", "rank.township": "乡镇",
    "rank.vetoed": "一票否决", "rank.rulebook": "规则版本 {v}",
    "grade.excellent": "优秀", "grade.good": "良好", "grade.poor": "差", "grade.none": "未评分",
    "subject.title": "考核详情", "subject.score": "得分", "subject.grade": "等次", "subject.rank": "名次",
    "subject.indicators": "考核指标", "subject.indicator": "指标", "subject.weight": "权重",
    "subject.ratio": "分子 / 分母", "subject.points": "得分", "subject.evidence": "依据",
    "subject.no_evidence": "无扣分依据", "subject.evidence_count": "{n} 条依据",
    "subject.veto_reasons": "否决原因", "subject.not_applicable": "没有适用的指标，不评分。",
    "pay.title": "个人待遇", "pay.monthly": "月绩效工资（元）", "pay.rewards": "奖励（元）",
    "pay.goods": "外部“好”评价次数", "pay.until": "限制至", "pay.no_restriction": "无限制",
    "pay.restrictions": "限制事项",
    "ind.visit_compliance": "走访达标", "ind.leader_village_visits": "领导遍访", "ind.policy_exam": "政策考试",
    "ind.awareness_checks": "应知应会抽查", "ind.project_delivery": "项目按期完成",
    "ind.fund_disbursement": "资金拨付", "ind.supervision_rating": "督查评价", "ind.residency": "驻村天数",
    "ind.loan_recovery": "贷款回收", "ind.review_timeliness": "贷款审查时效",
    "progress.title": "县域进度", "progress.year": "计划年度", "progress.projects": "各部门项目进度",
    "progress.disbursement": "各部门资金拨付率", "progress.recovery": "各乡镇贷款回收率",
    "progress.department": "部门", "progress.total": "项目数", "progress.overdue": "逾期",
    "progress.allocated": "下达（元）", "progress.disbursed": "拨付（元）", "progress.rate": "拨付率",
    "progress.target": "9月30日拨付率（目标 {t}）", "progress.township": "乡镇", "progress.loans_due": "到期笔数",
    "progress.principal_due": "到期本金（元）", "progress.repaid": "按期收回（元）",
    "progress.recovery_rate": "回收率", "progress.recommendation": "建议", "progress.no_projects": "本年度没有项目。",
    "progress.no_townships": "没有可查看的乡镇。", "progress.target_line": "目标线",
    "status.planned": "计划", "status.started": "在建", "status.completed": "完工", "status.accepted": "已验收",
    "status.cancelled": "取消",
    "rec.raise_quota_and_reward": "增加额度并奖励", "rec.keep_quota": "维持额度",
    "rec.cut_quota_no_working_funds": "压减额度、不安排工作经费",
    "bulletin.title": "周通报", "bulletin.week": "周（ISO）", "bulletin.week_hint": "如 2023-W18",
    "bulletin.range": "{from} 至 {to}，报送截止 {due}", "bulletin.csv": "下载 CSV", "bulletin.xlsx": "下载 Excel",
    "bulletin.downloaded": "已下载 {name}",
    "kind.department": "部门", "kind.township": "乡镇",
    "col.kind": "类别", "col.id": "编号", "col.name": "名称", "col.visits_this_week": "本周走访户次",
    "col.month_visit_compliance": "本月走访达标率", "col.projects_started": "本周开工项目",
    "col.projects_completed": "本周完工项目", "col.projects_overdue": "逾期未完工项目",
    "col.disbursement_rate": "资金拨付率", "col.loans_applied": "本周贷款申请", "col.loans_approved": "本周贷款审批",
    "col.loans_overdue": "逾期贷款", "col.exits_this_week": "本周脱贫户", "col.new_monitoring_flags": "本周新增监测户",
    "dept.transport": "交通运输", "dept.water": "水利", "dept.power": "电力", "dept.health": "卫生健康",
    "dept.housing": "住房建设", "dept.education": "教育", "dept.agriculture": "农业农村",
    "dept.civil_affairs": "民政", "dept.finance": "财政", "dept.poverty_office": "扶贫办", "dept.other": "其他",
    "role.admin": "管理员", "role.leading_group": "领导小组", "role.township": "乡镇", "role.department": "部门",
    "role.unit": "单位", "role.cadre": "干部", "role.credit_union": "信用社", "role.inspector": "督查",
    "ev.household_id": "户", "ev.month": "月份", "ev.cadre_id": "干部", "ev.best_score": "最好成绩",
    "ev.rating": "评价", "ev.source": "来源", "ev.rated_on": "评价日期", "ev.village_id": "村", "ev.visits": "走访次数",
    "ev.required": "应走访", "ev.project_id": "项目", "ev.title": "名称", "ev.deadline": "期限",
    "ev.completed_on": "完工日期", "ev.days": "天数", "ev.loan_id": "贷款", "ev.maturity_date": "到期日",
    "ev.review": "审查", "ev.done_on": "办理日期", "ev.passed": "通过", "ev.checked_on": "抽查日期",
    "ev.due_on": "应办日期", "ev.repaid_on_time": "按期收回", "ev.due_by": "应办期限", "ev.late": "逾期",
    "ev.pairing_id": "结对", "ev.principal": "本金",
    "rating.good": "好", "rating.fair": "较好", "rating.poor": "差",
    "source.internal": "内部", "source.county": "县", "source.city": "市", "source.province": "省",
    "source.third_party": "第三方",
    "yes": "是", "no": "否"
  };
  var en = {
    "app.title": "Poverty alleviation · Leading group",
    "nav.rankings": "Rankings", "nav.progress": "County progress", "nav.bulletin": "Weekly bulletin",
    "nav.rulebook": "Rulebook", "rulebook.hint": "The county rulebook (read-only): each value and the date it took effect; admin or the leading group change it through the API.",
    "rulebook.key": "Key", "rulebook.value": "Value in force", "rulebook.history": "Versions",
    "nav.signout": "Sign out", "lang.switch": "中文",
    "login.title": "Sign in", "login.username": "Username", "login.password": "Password", "login.submit": "Sign in",
    "login.hint": "Use the same account as for the API.",
    "login.failed": "Sign-in failed", "login.expired": "Your session has expired; please sign in again.",
    "common.period": "Period", "common.period_hint": "year 2023, quarter 2023-Q3 or month 2023-05",
    "common.as_of": "As of", "common.show": "Show", "common.loading": "Loading…",
    "common.none": "—", "common.print": "Print", "common.back": "Back to rankings", "common.filter": "Filter",
    "common.all": "All", "common.search": "name or id", "common.error": "Something went wrong",
    "common.no_data": "No data.", "common.shown": "{n} of {total} shown",
    "error.401": "Not signed in or session expired", "error.403": "Not allowed", "error.404": "Not found",
    "error.400": "Invalid input", "error.422": "Refused by a rule", "error.503": "Service unavailable",
    "error.500": "System error", "error.network": "Cannot reach the server",
    "subject.unit": "Units", "subject.cadre": "Cadres", "subject.township": "Townships",
    "rank.title": "Rankings", "rank.rank": "Rank", "rank.name": "Name", "rank.id": "ID", "rank.score": "Score",
    "rank.grade": "Grade", "rank.veto": "Veto", "rank.department": "Department", "rank.township": "Township",
    "rank.vetoed": "One-vote veto", "rank.rulebook": "rulebook version {v}",
    "grade.excellent": "Excellent", "grade.good": "Good", "grade.poor": "Poor", "grade.none": "Not scored",
    "subject.title": "Score details", "subject.score": "Score", "subject.grade": "Grade", "subject.rank": "Rank",
    "subject.indicators": "Indicators", "subject.indicator": "Indicator", "subject.weight": "Weight",
    "subject.ratio": "Numerator / denominator", "subject.points": "Points", "subject.evidence": "Evidence",
    "subject.no_evidence": "No shortfall", "subject.evidence_count": "{n} items",
    "subject.veto_reasons": "Veto reasons", "subject.not_applicable": "No indicator applies; no score.",
    "pay.title": "Pay and consequences", "pay.monthly": "Monthly performance pay (yuan)", "pay.rewards": "Rewards (yuan)",
    "pay.goods": "External 'good' ratings", "pay.until": "Restricted until", "pay.no_restriction": "No restriction",
    "pay.restrictions": "Restrictions",
    "ind.visit_compliance": "Household visits", "ind.leader_village_visits": "Leaders' village visits",
    "ind.policy_exam": "Policy exam", "ind.awareness_checks": "Policy awareness checks",
    "ind.project_delivery": "Projects on time", "ind.fund_disbursement": "Fund disbursement",
    "ind.supervision_rating": "Supervision rating", "ind.residency": "Residency days",
    "ind.loan_recovery": "Loan recovery", "ind.review_timeliness": "Loan review timeliness",
    "progress.title": "County progress", "progress.year": "Plan year", "progress.projects": "Projects by department",
    "progress.disbursement": "Disbursement rate by department", "progress.recovery": "Loan recovery by township",
    "progress.department": "Department", "progress.total": "Projects", "progress.overdue": "Overdue",
    "progress.allocated": "Allocated (yuan)", "progress.disbursed": "Disbursed (yuan)", "progress.rate": "Rate",
    "progress.target": "Rate on 30 Sep (target {t})", "progress.township": "Township", "progress.loans_due": "Loans due",
    "progress.principal_due": "Principal due (yuan)", "progress.repaid": "Repaid on time (yuan)",
    "progress.recovery_rate": "Recovery rate", "progress.recommendation": "Recommendation",
    "progress.no_projects": "No projects in this plan year.", "progress.no_townships": "No township you may see.",
    "progress.target_line": "Target",
    "status.planned": "Planned", "status.started": "Started", "status.completed": "Completed",
    "status.accepted": "Accepted", "status.cancelled": "Cancelled",
    "rec.raise_quota_and_reward": "Raise quota, reward", "rec.keep_quota": "Keep quota",
    "rec.cut_quota_no_working_funds": "Cut quota, no working funds",
    "bulletin.title": "Weekly bulletin", "bulletin.week": "ISO week", "bulletin.week_hint": "e.g. 2023-W18",
    "bulletin.range": "{from} to {to}, due {due}", "bulletin.csv": "Download CSV", "bulletin.xlsx": "Download Excel",
    "bulletin.downloaded": "Downloaded {name}",
    "kind.department": "Department", "kind.township": "Township",
    "col.kind": "Kind", "col.id": "ID", "col.name": "Name", "col.visits_this_week": "Visits this week",
    "col.month_visit_compliance": "Month's visit compliance", "col.projects_started": "Projects started",
    "col.projects_completed": "Projects completed", "col.projects_overdue": "Projects overdue",
    "col.disbursement_rate": "Disbursement rate", "col.loans_applied": "Loans applied",
    "col.loans_approved": "Loans approved", "col.loans_overdue": "Loans overdue", "col.exits_this_week": "Exits",
    "col.new_monitoring_flags": "New monitoring flags",
    "dept.transport": "Transport", "dept.water": "Water", "dept.power": "Power", "dept.health": "Health",
    "dept.housing": "Housing", "dept.education": "Education", "dept.agriculture": "Agriculture",
    "dept.civil_affairs": "Civil affairs", "dept.finance": "Finance", "dept.poverty_office": "Poverty office",
    "dept.other": "Other",
    "role.admin": "Admin", "role.leading_group": "Leading group", "role.township": "Township",
    "role.department": "Department", "role.unit": "Unit", "role.cadre": "Cadre", "role.credit_union": "Credit union",
    "role.inspector": "Inspector",
    "ev.household_id": "Household", "ev.month": "Month", "ev.cadre_id": "Cadre", "ev.best_score": "Best score",
    "ev.rating": "Rating", "ev.source": "Source", "ev.rated_on": "Rated on", "ev.village_id": "Village",
    "ev.visits": "Visits", "ev.required": "Required", "ev.project_id": "Project", "ev.title": "Title",
    "ev.deadline": "Deadline", "ev.completed_on": "Completed on", "ev.days": "Days", "ev.loan_id": "Loan",
    "ev.maturity_date": "Maturity", "ev.review": "Review", "ev.done_on": "Done on", "ev.passed": "Passed",
    "ev.checked_on": "Checked on", "ev.due_on": "Due on", "ev.repaid_on_time": "Repaid on time",
    "ev.due_by": "Due by", "ev.late": "Late", "ev.pairing_id": "Pairing", "ev.principal": "Principal",
    "rating.good": "Good", "rating.fair": "Fair", "rating.poor": "Poor",
    "source.internal": "Internal", "source.county": "County", "source.city": "City", "source.province": "Province",
    "source.third_party": "Third party",
    "yes": "yes", "no": "no"
  };
  var dictionaries = { zh: zh, en: en };
  var KEY = "fupin.lang";

  function lang() {
    var chosen = null;
    try { chosen = window.localStorage.getItem(KEY); } catch (e) { /* private mode */ }
    return chosen === "en" ? "en" : "zh";
  }

  /* t("key", {n: 3}) → the label in the chosen language; a missing key shows itself. */
  function t(key, values) {
    var text = dictionaries[lang()][key];
    if (text === undefined) text = zh[key];
    if (text === undefined) return key;
    if (values) {
      Object.keys(values).forEach(function (name) { text = text.split("{" + name + "}").join(String(values[name])); });
    }
    return text;
  }

  /* A code's label if there is one (t("dept.", "transport") → 交通运输), else the code. */
  function label(prefix, code) {
    if (code === null || code === undefined || code === "") return t("common.none");
    var key = prefix + code;
    return (dictionaries[lang()][key] !== undefined || zh[key] !== undefined) ? t(key) : String(code);
  }

  function setLang(value) {
    try { window.localStorage.setItem(KEY, value === "en" ? "en" : "zh"); } catch (e) { /* ignore */ }
  }

  window.I18N = { t: t, label: label, lang: lang, setLang: setLang };
})();
