/* The leading group's pages: sign-in, rankings, a subject's score card, county progress and the
   weekly bulletin. Hash routes (#/rankings?type=unit&period=2023&as_of=2023-12-31) so every view
   is a link one can bookmark or send. All text goes in with textContent: names come from users. */
(function () {
  "use strict";
  var t = window.I18N.t, label = window.I18N.label, API = window.API;
  var main = document.getElementById("main");
  var SUBJECT_TYPES = ["unit", "cadre", "township"];
  var GRADES = ["excellent", "good", "poor"];
  var STATUSES = ["planned", "started", "completed", "accepted", "cancelled"];
  var STATUS_COLOURS = { planned: "#9aa5b1", started: "#2563eb", completed: "#d4a017", accepted: "#1e7b34",
                         cancelled: "#b42318" };
  // API.md "Codes": the default department list (configurable on the server; unknown ones just have no data).
  var DEPARTMENTS = ["transport", "water", "power", "health", "housing", "education", "agriculture",
                     "civil_affairs", "finance", "poverty_office", "other"];
  var charts = [];
  var renderCount = 0;

  // --- small helpers --------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
      else if (value === true) node.setAttribute(key, "");
      else node.setAttribute(key, value);
    });
    (Array.isArray(children) ? children : children === undefined ? [] : [children]).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
    });
    return node;
  }

  /* "Today" is the county's date (rulebook timezone, GET /api/v1/today), never the browser's:
     a browser abroad, or one opened before 08:00 Beijing time on a UTC machine, would be a day off.
     Until the county's answer arrives, the date in Asia/Shanghai stands in. */
  var countyToday = null;
  function today() {
    if (countyToday) return countyToday;
    try {
      return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
    } catch (e) {
      var d = new Date(Date.now() + 8 * 3600 * 1000);
      return d.toISOString().slice(0, 10);
    }
  }

  function isoWeek(dateText) {
    var d = new Date(dateText + "T00:00:00Z");
    var day = d.getUTCDay() || 7;
    d.setUTCDate(d.getUTCDate() + 4 - day);
    var yearStart = new Date(Date.UTC(d.getUTCFullYear(), 0, 1));
    var week = Math.ceil(((d - yearStart) / 86400000 + 1) / 7);
    return d.getUTCFullYear() + "-W" + String(week).padStart(2, "0");
  }

  /* Remembered choices, so moving between pages keeps the period and date. */
  function remembered() {
    var saved = {};
    try { saved = JSON.parse(window.sessionStorage.getItem("fupin.choices") || "{}"); } catch (e) { saved = {}; }
    var as_of = saved.as_of || today();
    return {
      type: saved.type || "unit", period: saved.period || as_of.slice(0, 4), as_of: as_of,
      year: saved.year || (saved.period || as_of).slice(0, 4), week: saved.week || isoWeek(as_of)
    };
  }

  function remember(values) {
    var saved = remembered();
    Object.keys(values).forEach(function (k) { if (values[k]) saved[k] = values[k]; });
    window.sessionStorage.setItem("fupin.choices", JSON.stringify(saved));
  }

  function route() {
    var hash = window.location.hash.replace(/^#\/?/, "");
    var q = hash.indexOf("?");
    var path = q >= 0 ? hash.slice(0, q) : hash;
    var params = {};
    if (q >= 0) {
      hash.slice(q + 1).split("&").forEach(function (pair) {
        if (!pair) return;
        var i = pair.indexOf("=");
        var key = decodeURIComponent(i >= 0 ? pair.slice(0, i) : pair);
        params[key] = i >= 0 ? decodeURIComponent(pair.slice(i + 1).replace(/\+/g, " ")) : "";
      });
    }
    var parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    return { page: parts[0] || "rankings", parts: parts.slice(1), params: params };
  }

  function link(page, parts, params) {
    var path = "#/" + [page].concat((parts || []).map(encodeURIComponent)).join("/");
    var q = Object.keys(params || {}).filter(function (k) { return params[k]; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); });
    return path + (q.length ? "?" + q.join("&") : "");
  }

  function go(hash) {
    if (window.location.hash === hash) render();
    else window.location.hash = hash;
  }

  function gradeBadge(grade) {
    var key = grade || "none";
    return el("span", { "class": "grade grade-" + key, "data-grade": key, text: t("grade." + key) });
  }

  function number(value, digits) {
    if (value === null || value === undefined || value === "") return t("common.none");
    var n = Number(value);
    if (isNaN(n)) return String(value);
    return n.toLocaleString(window.I18N.lang() === "en" ? "en-US" : "zh-CN",
                            { minimumFractionDigits: digits || 0, maximumFractionDigits: digits === undefined ? 4 : digits });
  }

  function percent(rate) {
    if (rate === null || rate === undefined || rate === "") return t("common.none");
    return (Number(rate) * 100).toFixed(1) + "%";
  }

  function errorBox(error) {
    var status = error && error.status !== undefined ? error.status : 500;
    var title = t("error." + status) !== "error." + status ? t("error." + status) : t("common.error");
    var box = el("div", { "class": "alert alert-error", role: "alert", "data-status": String(status),
                          "data-code": error.code || "" },
                 [el("strong", { text: title }), el("span", { "class": "message", text: error.message || String(error) })]);
    var details = error.details || {};
    var fields = Object.keys(details).filter(function (k) { return Array.isArray(details[k]); });
    if (status === 400 && fields.length) {
      box.appendChild(el("ul", {}, fields.map(function (k) { return el("li", { text: k + ": " + details[k].join("; ") }); })));
    }
    return box;
  }

  function loading() { return el("p", { "class": "muted", role: "status", text: t("common.loading") }); }

  function field(labelText, input, hint) {
    return el("label", { "class": "field" }, [el("span", { text: labelText }), input,
      hint ? el("span", { "class": "muted", text: hint }) : null]);
  }

  function destroyCharts() {
    charts.forEach(function (chart) { chart.destroy(); });
    charts = [];
  }

  function chart(canvas, config) {
    if (!window.Chart) return null;  // vendored script missing: the tables still carry every number
    config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: false }, config.options || {});
    var made = new window.Chart(canvas, config);
    charts.push(made);
    return made;
  }

  /* Target lines across the whole plot (a "line" dataset would stop at the first and last bar). */
  function targetLines(lines) {
    return {
      id: "targetLines",
      afterDatasetsDraw: function (c) {
        var y = c.scales.y, area = c.chartArea, ctx = c.ctx;
        lines.forEach(function (line) {
          var at = y.getPixelForValue(line.value);
          ctx.save();
          ctx.strokeStyle = line.colour; ctx.lineWidth = 2; ctx.setLineDash([6, 4]);
          ctx.beginPath(); ctx.moveTo(area.left, at); ctx.lineTo(area.right, at); ctx.stroke();
          ctx.setLineDash([]); ctx.fillStyle = line.colour; ctx.font = "12px sans-serif"; ctx.textAlign = "right";
          ctx.fillText(line.label, area.right - 4, at - 4);
          ctx.restore();
        });
      }
    };
  }

  /* A sortable table: columns [{key, label, num, value(row), cell(row)}]. */
  function sortableTable(columns, rows, state, onSort) {
    var sorted = rows.slice();
    var column = columns.filter(function (c) { return c.key === state.sortKey; })[0];
    if (column) {
      var valueOf = column.value || function (row) { return row[column.key]; };
      sorted.sort(function (a, b) {
        var x = valueOf(a), y = valueOf(b);
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;  // blanks last either way
        if (y === null || y === undefined) return -1;
        var order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), "zh-CN");
        return state.sortDir === "desc" ? -order : order;
      });
    }
    var head = el("tr", {}, columns.map(function (c) {
      var sort = c.key === state.sortKey ? (state.sortDir === "desc" ? "descending" : "ascending") : "none";
      var content = c.sortable === false ? c.label : el("button", {
        type: "button", "class": "sort", "data-sort": c.key, text: c.label,
        onclick: function () {
          onSort(c.key, state.sortKey === c.key && state.sortDir === "asc" ? "desc" : "asc");
        }
      });
      return el("th", { "class": c.num ? "num" : null, "aria-sort": sort, scope: "col" }, content);
    }));
    var body = el("tbody", {}, sorted.map(function (row) {
      return el("tr", { "data-id": row.subject_id || row.id || null }, columns.map(function (c) {
        var content = c.cell ? c.cell(row) : (row[c.key] === null || row[c.key] === undefined ? t("common.none") : String(row[c.key]));
        return el("td", { "class": c.num ? "num" : null, "data-col": c.key }, content);
      }));
    }));
    return el("div", { "class": "table-wrap" }, el("table", {}, [el("thead", {}, head), body]));
  }

  // --- chrome -------------------------------------------------------------------------------
  function applyChrome(page) {
    document.documentElement.lang = window.I18N.lang() === "en" ? "en" : "zh-CN";
    document.title = t("app.title");
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n]"), function (node) {
      node.textContent = t(node.getAttribute("data-i18n"));
    });
    var langButton = document.getElementById("lang");
    langButton.textContent = t("lang.switch");
    langButton.setAttribute("lang", window.I18N.lang() === "en" ? "zh-CN" : "en");
    var who = API.principal();
    document.getElementById("nav").hidden = !who;
    document.getElementById("signout").hidden = !who;
    document.getElementById("who").textContent = who ? who.username + " · " + label("role.", who.role) : "";
    Array.prototype.forEach.call(document.querySelectorAll("#nav a"), function (a) {
      a.classList.toggle("active", a.getAttribute("data-page") === page);
      if (a.getAttribute("data-page") === page) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
  }

  // --- pages --------------------------------------------------------------------------------
  function loginPage(r) {
    var username = el("input", { name: "username", id: "username", autocomplete: "username", required: true });
    var password = el("input", { name: "password", id: "password", type: "password", autocomplete: "current-password",
                                 required: true });
    var message = el("div", { id: "login-message" });
    if (r.params.expired) message.appendChild(el("div", { "class": "alert alert-info", role: "status", text: t("login.expired") }));
    if (r.params.idle) message.appendChild(el("div", { "class": "alert alert-info", role: "status", id: "idle-message",
                                                       text: t("login.idle") }));
    var submit = el("button", { type: "submit", "class": "primary", id: "login-submit", text: t("login.submit") });
    var form = el("form", { "class": "card login", id: "login-form", onsubmit: function (event) {
      event.preventDefault();
      submit.disabled = true;
      message.textContent = "";
      API.signIn(username.value.trim(), password.value).then(function () {
        go(r.params.next || "#/rankings");
      }).catch(function (error) {
        submit.disabled = false;
        var box = errorBox(error);
        box.querySelector("strong").textContent = t("login.failed");
        message.appendChild(box);
        password.select();
      });
    } }, [
      el("h1", { text: t("login.title") }), el("p", { "class": "muted", text: t("login.hint") }), message,
      field(t("login.username"), username), field(t("login.password"), password), submit
    ]);
    main.appendChild(form);
    username.focus();
  }

  function periodControls(values, onSubmit, extra) {
    var period = el("input", { name: "period", id: "period", value: values.period, required: true, size: 9,
                               pattern: "\\d{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?", title: t("common.period_hint"),
                               placeholder: "2023-Q3" });
    var asOf = el("input", { name: "as_of", id: "as_of", type: "date", value: values.as_of, required: true });
    return el("form", { "class": "controls", id: "controls", onsubmit: function (event) {
      event.preventDefault();
      onSubmit(period.value.trim(), asOf.value);
    } }, (extra || []).concat([
      field(t("common.period"), period, t("common.period_hint")), field(t("common.as_of"), asOf),
      el("button", { type: "submit", "class": "primary", id: "show", text: t("common.show") })
    ]));
  }

  function rankingsPage(r, token) {
    var saved = remembered();
    var type = SUBJECT_TYPES.indexOf(r.params.type) >= 0 ? r.params.type : saved.type;
    var values = { period: r.params.period || saved.period, as_of: r.params.as_of || saved.as_of };
    remember({ type: type, period: values.period, as_of: values.as_of });
    var chooser = el("div", { "class": "segmented", role: "group", "aria-label": t("rank.title") },
      SUBJECT_TYPES.map(function (kind) {
        return el("button", { type: "button", "data-type": kind, "aria-pressed": String(kind === type), text: t("subject." + kind),
                              onclick: function () { go(link("rankings", [], { type: kind, period: values.period, as_of: values.as_of })); } });
      }));
    main.appendChild(el("h1", { text: t("rank.title") + " · " + t("subject." + type) }));
    main.appendChild(periodControls(values, function (period, asOf) {
      go(link("rankings", [], { type: type, period: period, as_of: asOf }));
    }, [chooser]));
    var area = el("div", { id: "rankings" }, loading());
    main.appendChild(area);
    API.getAll("/api/v1/scores/" + type, values).then(function (answer) {
      if (token !== renderCount) return;
      area.textContent = "";
      showRankings(area, type, answer, values);
    }).catch(function (error) {
      if (token !== renderCount) return;
      area.textContent = "";
      area.appendChild(errorBox(error));
    });
  }

  function showRankings(area, type, answer, values) {
    var statusNote = periodStatusNote(answer.period_status);
    if (statusNote) area.appendChild(statusNote);
    var items = answer.items || [];
    var state = { sortKey: "rank", sortDir: "asc", text: "", grade: "", group: "" };
    // Departments (units) or townships: offered only when the API's items carry them.
    var groupKey = type === "unit" ? "department" : type === "township" ? "township" : null;
    var groups = [];
    if (type === "unit") {
      groups = items.map(function (i) { return i.department; }).filter(Boolean);
    } else if (type === "township") {
      groups = items.map(function (i) { return i.subject_id; });
    }
    groups = groups.filter(function (g, i) { return groups.indexOf(g) === i; }).sort();
    var search = el("input", { type: "search", id: "filter-text", placeholder: t("common.search"), "aria-label": t("common.search") });
    var grade = el("select", { id: "filter-grade" }, [el("option", { value: "", text: t("common.all") })].concat(
      GRADES.map(function (g) { return el("option", { value: g, text: t("grade." + g) }); })));
    var group = groups.length ? el("select", { id: "filter-group" }, [el("option", { value: "", text: t("common.all") })].concat(
      groups.map(function (g) {
        var name = type === "township" ? (items.filter(function (i) { return i.subject_id === g; })[0] || {}).name || g : label("dept.", g);
        return el("option", { value: g, text: name });
      }))) : null;
    var count = el("span", { "class": "muted", id: "shown", role: "status" });
    var tableBox = el("div");
    var filters = el("div", { "class": "controls no-print" }, [
      field(t("common.filter"), search), field(t("rank.grade"), grade),
      group ? field(t(type === "unit" ? "rank.department" : "rank.township"), group) : null, count
    ]);
    area.appendChild(filters);
    area.appendChild(el("p", { "class": "muted", text: answer.period + " · " + t("common.as_of") + " " + answer.as_of + " · " +
                                                      t("rank.rulebook", { v: answer.rulebook_version }) }));
    area.appendChild(tableBox);

    var columns = [
      { key: "rank", label: t("rank.rank"), num: true },
      { key: "name", label: t("rank.name"), cell: function (row) {
        return el("a", { href: link("subject", [type, row.subject_id], values), "class": "subject-link", text: row.name || row.subject_id });
      } },
      { key: "subject_id", label: t("rank.id") },
      type === "unit" && groups.length ? { key: "department", label: t("rank.department"), cell: function (row) {
        return label("dept.", row.department);
      } } : null,
      { key: "score", label: t("rank.score"), num: true, cell: function (row) {
        var badge = closedBadge(answer.period_status);
        return badge ? el("span", {}, [number(row.score, 2), " ", badge]) : number(row.score, 2);
      } },
      { key: "grade", label: t("rank.grade"), value: function (row) { return row.grade ? GRADES.indexOf(row.grade) : null; },
        cell: function (row) { return gradeBadge(row.grade); } },
      { key: "vetoed", label: t("rank.veto"), value: function (row) { return row.vetoed ? 0 : 1; }, cell: function (row) {
        if (!row.vetoed) return "";
        return el("div", { "class": "veto", "data-vetoed": "true" }, [
          t("rank.vetoed"), vetoReasons(row)
        ]);
      } }
    ].filter(Boolean);

    function draw() {
      var text = state.text.toLowerCase();
      var rows = items.filter(function (row) {
        if (state.grade && row.grade !== state.grade) return false;
        if (state.group && (groupKey === "township" ? row.subject_id : row[groupKey]) !== state.group) return false;
        if (text && ((row.name || "") + " " + row.subject_id).toLowerCase().indexOf(text) < 0) return false;
        return true;
      });
      count.textContent = t("common.shown", { n: rows.length, total: items.length });
      tableBox.textContent = "";
      if (!items.length) {
        tableBox.appendChild(el("div", { "class": "alert alert-info", text: t("common.no_data") }));
        return;
      }
      tableBox.appendChild(sortableTable(columns, rows, state, function (key, dir) {
        state.sortKey = key; state.sortDir = dir; draw();
      }));
    }
    search.addEventListener("input", function () { state.text = search.value.trim(); draw(); });
    grade.addEventListener("change", function () { state.grade = grade.value; draw(); });
    if (group) group.addEventListener("change", function () { state.group = group.value; draw(); });
    draw();
  }

  // Ids the API names for people (issue 19): shown by the names beside them, not as UUIDs.
  var NAMED_BY = { household_id: "household_no", cadre_id: "cadre_name", village_id: "village_name", project_id: "title" };
  var SHOWN_TOGETHER = ["household_no", "head_name", "village_name", "pairing_id"];

  function evidenceValue(key, value) {
    if (key === "rating") return label("rating.", value);
    if (key === "source") return label("source.", value);
    if (typeof value === "boolean") return t(value ? "yes" : "no");
    if (value === null || value === undefined) return t("common.none");
    return String(value);
  }

  function evidenceList(evidence) {
    if (!evidence || !evidence.length) return el("span", { "class": "muted", text: t("subject.no_evidence") });
    var list = el("ul", { "class": "evidence" }, evidence.map(function (item) {
      if (typeof item !== "object" || item === null) return el("li", { text: String(item) });
      var parts = [];
      if (item.household_no || item.head_name) {  // 户 431222-00003 王**（东村）
        var who = [item.household_no, item.head_name].filter(Boolean).join(" ");
        if (item.village_name) who += "（" + item.village_name + "）";
        parts.push(el("span", { "class": "household" }, [el("span", { "class": "k", text: t("ev.household") + "：" }), who]));
      }
      Object.keys(item).forEach(function (key) {
        if (SHOWN_TOGETHER.indexOf(key) >= 0) return;
        if (NAMED_BY[key] && item[NAMED_BY[key]]) return;
        if (key === "village_name" || (key === "village_id" && parts.length)) return;
        parts.push(el("span", {}, [el("span", { "class": "k", text: label("ev.", key) + "：" }), evidenceValue(key, item[key])]));
      });
      return el("li", {}, parts.map(function (part, i) { return el("span", {}, [i ? "，" : "", part]); }));
    }));
    if (evidence.length <= 5) return list;
    return el("details", {}, [el("summary", { text: t("subject.evidence_count", { n: evidence.length }) }), list]);
  }

  /* Veto reasons in the page's language from the API's structured items (older answers: the text). */
  function vetoReasons(item) {
    var reasons = item.vetoes && item.vetoes.length ? item.vetoes.map(function (v) {
      return t("veto." + v.kind, { on: v.on, reason: v.reason || "", source: label("source.", v.source) });
    }) : (item.veto_reasons || []);
    return el("ul", { "class": "veto-reasons" }, reasons.map(function (reason) { return el("li", { text: reason }); }));
  }

  /* Whether the scores shown belong to a closed month (月度考核定格): a marker that says so. */
  function periodStatusNote(status) {
    if (!status) return null;
    if (status.status === "closed") {
      return el("div", { "class": "alert alert-info closed-note", id: "period-status", "data-status": "closed" }, [
        el("span", { "class": "closed-badge", text: t("closed.badge") }), " ",
        t("closed.title", { on: status.closed_on })]);
    }
    if (status.closed_months && status.closed_months.length) {
      return el("div", { "class": "alert alert-info", id: "period-status", "data-status": "open",
                         text: t("closed.months", { months: status.closed_months.join("、") }) });
    }
    return null;
  }

  function closedBadge(status) {
    if (!status || status.status !== "closed") return null;
    return el("span", { "class": "closed-badge", "data-closed-on": status.closed_on, title: t("closed.title", { on: status.closed_on }),
                        text: t("closed.badge") });
  }

  function subjectPage(r, token) {
    var type = r.parts[0], id = r.parts[1];
    var saved = remembered();
    var values = { period: r.params.period || saved.period, as_of: r.params.as_of || saved.as_of };
    remember({ period: values.period, as_of: values.as_of });
    main.appendChild(el("p", { "class": "no-print" }, el("a", { href: link("rankings", [], { type: type, period: values.period, as_of: values.as_of }),
                                                           id: "back", text: "← " + t("common.back") })));
    var heading = el("h1", { text: t("subject.title") + " · " + label("subject.", type) + " " + (id || "") });
    main.appendChild(heading);
    main.appendChild(periodControls(values, function (period, asOf) { go(link("subject", [type, id], { period: period, as_of: asOf })); }));
    var area = el("div", { id: "subject" }, loading());
    main.appendChild(area);
    if (SUBJECT_TYPES.indexOf(type) < 0 || !id) {
      area.textContent = "";
      area.appendChild(errorBox({ status: 404, message: "#/subject/<unit|cadre|township>/<id>" }));
      return;
    }
    API.get("/api/v1/scores/" + type + "/" + encodeURIComponent(id), values).then(function (card) {
      if (token !== renderCount) return;
      area.textContent = "";
      heading.textContent = t("subject.title") + " · " + label("subject.", type) + " · " + (card.name || id);
      showSubject(area, type, card);
    }).catch(function (error) {
      if (token !== renderCount) return;
      area.textContent = "";
      area.appendChild(errorBox(error));
    });
  }

  function showSubject(area, type, card) {
    var statusNote = periodStatusNote(card.period_status);
    if (statusNote) area.appendChild(statusNote);
    area.appendChild(el("div", { "class": "summary" }, [
      el("div", { "class": "card" }, [el("div", { "class": "muted", text: t("subject.score") }),
                                      el("div", { "class": "value", id: "score", text: number(card.score, 2) }),
                                      closedBadge(card.period_status)]),
      el("div", { "class": "card" }, [el("div", { "class": "muted", text: t("subject.grade") }), el("div", { "class": "value" }, gradeBadge(card.grade))]),
      el("div", { "class": "card" }, [el("div", { "class": "muted", text: t("subject.rank") }),
                                      el("div", { "class": "value", text: card.rank === undefined || card.rank === null ? t("common.none") : String(card.rank) })]),
      el("div", { "class": "card" }, [el("div", { "class": "muted", text: t("common.period") }),
                                      el("div", { text: card.period + " · " + t("common.as_of") + " " + card.as_of }),
                                      el("div", { "class": "muted", text: t("rank.rulebook", { v: card.rulebook_version }) })])
    ]));
    if (card.vetoed) {
      area.appendChild(el("div", { "class": "alert alert-error", id: "veto" }, [
        el("strong", { text: t("rank.vetoed") }), el("span", { text: t("subject.veto_reasons") + "：" }), vetoReasons(card)
      ]));
    }
    area.appendChild(el("h2", { text: t("subject.indicators") }));
    var indicators = card.indicators || [];
    if (!indicators.length) {
      area.appendChild(el("div", { "class": "alert alert-info", text: t("subject.not_applicable") }));
    } else {
      area.appendChild(sortableTable([
        { key: "name", label: t("subject.indicator"), sortable: false, cell: function (row) {
          return el("span", { title: row.name }, [label("ind.", row.name), el("div", { "class": "muted", text: row.name })]);
        } },
        { key: "weight", label: t("subject.weight"), num: true, sortable: false },
        { key: "ratio", label: t("subject.ratio"), num: true, sortable: false, cell: function (row) {
          return number(row.numerator) + " / " + number(row.denominator);
        } },
        { key: "points", label: t("subject.points"), num: true, sortable: false, cell: function (row) { return number(row.points, 2); } },
        { key: "evidence", label: t("subject.evidence"), sortable: false, cell: function (row) { return evidenceList(row.evidence); } }
      ], indicators.map(function (row) { return Object.assign({ id: row.name }, row); }), {}, function () {}));
    }
    if (card.pay) {
      var pay = card.pay;
      area.appendChild(el("h2", { text: t("pay.title") }));
      area.appendChild(el("div", { "class": "summary", id: "pay" }, [
        el("div", { "class": "card" }, [el("div", { "class": "muted", text: t("pay.monthly") }),
                                        el("div", { "class": "value", "data-field": "monthly_performance_pay", text: pay.monthly_performance_pay || t("common.none") })]),
        el("div", { "class": "card" }, [el("div", { "class": "muted", text: t("pay.rewards") }),
                                        el("div", { "class": "value", "data-field": "rewards", text: pay.rewards || t("common.none") }),
                                        pay.external_good_ratings !== undefined ? el("div", { "class": "muted", text: t("pay.goods") + " " + pay.external_good_ratings }) : null]),
        el("div", { "class": "card" }, [el("div", { "class": "muted", text: t("pay.until") }),
                                        el("div", { "class": "value" + (pay.restrictions_until ? " veto" : ""), "data-field": "restrictions_until",
                                                    text: pay.restrictions_until || t("pay.no_restriction") }),
                                        pay.restrictions && pay.restrictions.length ? el("div", { "class": "muted", text: t("pay.restrictions") + "：" + pay.restrictions.join("、") }) : null])
      ]));
    }
  }

  function progressPage(r, token) {
    var saved = remembered();
    var year = /^\d{4}$/.test(r.params.year || "") ? r.params.year : saved.year;
    var as_of = r.params.as_of || saved.as_of;
    remember({ year: year, as_of: as_of });
    main.appendChild(el("h1", { text: t("progress.title") }));
    var yearInput = el("input", { id: "year", name: "year", type: "number", min: 2000, max: 2100, value: year, required: true });
    var asOfInput = el("input", { id: "as_of", name: "as_of", type: "date", value: as_of, required: true });
    main.appendChild(el("form", { "class": "controls", id: "controls", onsubmit: function (event) {
      event.preventDefault();
      go(link("progress", [], { year: yearInput.value, as_of: asOfInput.value }));
    } }, [field(t("progress.year"), yearInput), field(t("common.as_of"), asOfInput),
          el("button", { type: "submit", "class": "primary", id: "show", text: t("common.show") })]));
    var projectsArea = el("section", { id: "projects" }, [el("h2", { text: t("progress.projects") }), loading()]);
    var recoveryArea = el("section", { id: "recovery" }, [el("h2", { text: t("progress.recovery") }), loading()]);
    main.appendChild(projectsArea);
    main.appendChild(recoveryArea);

    var settle = function (promise) {
      return promise.then(function (value) { return { ok: true, value: value }; }, function (error) { return { ok: false, error: error }; });
    };
    Promise.all(DEPARTMENTS.map(function (d) {
      return settle(API.get("/api/v1/departments/" + d + "/statistics", { plan_year: year, as_of: as_of }));
    })).then(function (results) {
      if (token !== renderCount) return;
      showProjects(projectsArea, results);
    });
    var who = API.principal() || {};
    // The townships (with names) come from the township ranking. A township station sees only its
    // own recovery: ask for that one alone (the API would refuse the rest anyway).
    var own = who.role === "township" ? who.scope.township_id : null;
    API.getAll("/api/v1/scores/township", { period: year, as_of: as_of }).then(function (answer) {
      var list = answer.items || [];
      if (own) {
        list = list.filter(function (i) { return i.subject_id === own; });
        if (!list.length) list = [{ subject_id: own, name: own }];
      }
      return list;
    }).then(function (list) {
      return Promise.all(list.map(function (township) {
        return settle(API.get("/api/v1/townships/" + encodeURIComponent(township.subject_id) + "/recovery", { year: year }))
          .then(function (result) { result.township = township; return result; });
      }));
    }).then(function (results) {
      if (token !== renderCount) return;
      showRecovery(recoveryArea, results);
    }).catch(function (error) {
      if (token !== renderCount) return;
      recoveryArea.replaceChildren(el("h2", { text: t("progress.recovery") }), errorBox(error));
    });
  }

  function showProjects(area, results) {
    area.replaceChildren(el("h2", { text: t("progress.projects") }));
    var failed = results.filter(function (r) { return !r.ok; });
    var stats = results.filter(function (r) { return r.ok && r.value.projects > 0; }).map(function (r) { return r.value; });
    if (failed.length === results.length) { area.appendChild(errorBox(failed[0].error)); return; }
    if (!stats.length) { area.appendChild(el("div", { "class": "alert alert-info", text: t("progress.no_projects") })); return; }
    var names = stats.map(function (s) { return label("dept.", s.department); });
    var statusCanvas = el("canvas", { id: "chart-status", role: "img", "aria-label": t("progress.projects") });
    area.appendChild(el("div", { "class": "chart-row" }, [
      el("div", { "class": "chart-box" }, statusCanvas),
      sortableTable([{ key: "department", label: t("progress.department"), sortable: false, cell: function (s) { return label("dept.", s.department); } },
                     { key: "projects", label: t("progress.total"), num: true, sortable: false }]
        .concat(STATUSES.map(function (status) {
          return { key: status, label: t("status." + status), num: true, sortable: false, cell: function (s) { return String(s.by_status[status] || 0); } };
        }))
        .concat([{ key: "overdue", label: t("progress.overdue"), num: true, sortable: false }]),
        stats.map(function (s) { return Object.assign({ id: s.department }, s); }), {}, function () {})
    ]));
    chart(statusCanvas, {
      type: "bar",
      data: { labels: names, datasets: STATUSES.map(function (status) {
        return { label: t("status." + status), backgroundColor: STATUS_COLOURS[status],
                 data: stats.map(function (s) { return s.by_status[status] || 0; }) };
      }) },
      options: { indexAxis: "y", scales: { x: { stacked: true, ticks: { precision: 0 } }, y: { stacked: true } } }
    });

    area.appendChild(el("h2", { text: t("progress.disbursement") }));
    var target = stats[0].disbursement_target ? Number(stats[0].disbursement_target.target_rate) : 0.95;
    var fundsCanvas = el("canvas", { id: "chart-funds", role: "img", "aria-label": t("progress.disbursement") });
    area.appendChild(el("div", { "class": "chart-row" }, [
      el("div", { "class": "chart-box" }, fundsCanvas),
      sortableTable([
        { key: "department", label: t("progress.department"), sortable: false, cell: function (s) { return label("dept.", s.department); } },
        { key: "allocated", label: t("progress.allocated"), num: true, sortable: false, cell: function (s) { return number(s.allocated, 2); } },
        { key: "disbursed", label: t("progress.disbursed"), num: true, sortable: false, cell: function (s) { return number(s.disbursed, 2); } },
        { key: "disbursement_rate", label: t("progress.rate"), num: true, sortable: false, cell: function (s) { return percent(s.disbursement_rate); } },
        { key: "target", label: t("progress.target", { t: percent(target) }), num: true, sortable: false, cell: function (s) {
          return percent(s.disbursement_target && s.disbursement_target.rate);
        } }
      ], stats.map(function (s) { return Object.assign({ id: s.department }, s); }), {}, function () {})
    ]));
    chart(fundsCanvas, {
      type: "bar",
      data: { labels: names, datasets: [
        { label: t("progress.rate"), backgroundColor: stats.map(function (s) {
          return s.disbursement_rate !== null && Number(s.disbursement_rate) >= target ? "#1e7b34" : "#d4a017";
        }), data: stats.map(function (s) { return s.disbursement_rate === null ? 0 : Math.round(Number(s.disbursement_rate) * 1000) / 10; }) },
      ] },
      plugins: [targetLines([{ value: target * 100, colour: "#b42318", label: t("progress.target_line") + " " + percent(target) }])],
      options: { plugins: { legend: { display: false } },
                 scales: { y: { min: 0, max: 100, ticks: { callback: function (v) { return v + "%"; } } } } }
    });
  }

  function showRecovery(area, results) {
    area.replaceChildren(el("h2", { text: t("progress.recovery") }));
    if (!results.length) { area.appendChild(el("div", { "class": "alert alert-info", text: t("progress.no_townships") })); return; }
    var rows = results.filter(function (r) { return r.ok; }).map(function (r) {
      return Object.assign({ id: r.township.subject_id, name: r.township.name }, r.value);
    });
    results.filter(function (r) { return !r.ok; }).forEach(function (r) {
      var box = errorBox(r.error);
      box.insertBefore(el("span", { text: (r.township.name || r.township.subject_id) + "：" }), box.firstChild.nextSibling);
      area.appendChild(box);
    });
    if (!rows.length) return;
    var canvas = el("canvas", { id: "chart-recovery", role: "img", "aria-label": t("progress.recovery") });
    area.appendChild(el("div", { "class": "chart-row" }, [
      el("div", { "class": "chart-box" }, canvas),
      sortableTable([
        { key: "name", label: t("progress.township"), sortable: false, cell: function (r) { return r.name || r.township_id; } },
        { key: "loans_due", label: t("progress.loans_due"), num: true, sortable: false },
        { key: "principal_due", label: t("progress.principal_due"), num: true, sortable: false, cell: function (r) { return number(r.principal_due, 2); } },
        { key: "principal_repaid_on_time", label: t("progress.repaid"), num: true, sortable: false, cell: function (r) { return number(r.principal_repaid_on_time, 2); } },
        { key: "rate", label: t("progress.recovery_rate"), num: true, sortable: false, cell: function (r) { return percent(r.rate); } },
        { key: "recommendation", label: t("progress.recommendation"), sortable: false, cell: function (r) { return label("rec.", r.recommendation); } }
      ], rows, {}, function () {})
    ]));
    chart(canvas, {
      type: "bar",
      data: { labels: rows.map(function (r) { return r.name || r.township_id; }), datasets: [
        { label: t("progress.recovery_rate"), data: rows.map(function (r) { return r.rate === null ? 0 : Math.round(Number(r.rate) * 1000) / 10; }),
          backgroundColor: rows.map(function (r) {
            var rate = r.rate === null ? null : Number(r.rate);
            return rate === null ? "#9aa5b1" : rate >= 0.95 ? "#1e7b34" : rate >= 0.9 ? "#d4a017" : "#b42318";
          }) }
      ] },
      plugins: [targetLines([{ value: 95, colour: "#1e7b34", label: "95% " + t("progress.target_line") },
                             { value: 90, colour: "#b42318", label: "90%" }])],
      options: { plugins: { legend: { display: false } },
                 scales: { y: { min: 0, max: 100, ticks: { callback: function (v) { return v + "%"; } } } } }
    });
  }

  var BULLETIN_COLUMNS = ["kind", "id", "name", "visits_this_week", "month_visit_compliance", "projects_started",
                          "projects_completed", "projects_overdue", "disbursement_rate", "loans_applied", "loans_approved",
                          "loans_overdue", "exits_this_week", "new_monitoring_flags"];

  function bulletinPage(r, token) {
    var saved = remembered();
    var week = /^\d{4}-W\d{2}$/.test(r.params.week || "") ? r.params.week : saved.week;
    remember({ week: week });
    var weekInput = el("input", { id: "week", name: "week", value: week, required: true, size: 9,
                                  pattern: "\\d{4}-W(0[1-9]|[1-4]\\d|5[0-3])", placeholder: "2023-W18", title: t("bulletin.week_hint") });
    var note = el("div", { id: "download-message", role: "status" });
    function save(format) {
      return function () {
        note.textContent = "";
        var button = this;
        button.disabled = true;
        API.download("/api/v1/bulletins/weekly", { week: week, format: format }, "bulletin-" + week + "." + format)
          .then(function (name) { note.appendChild(el("div", { "class": "alert alert-info no-print", text: t("bulletin.downloaded", { name: name }) })); })
          .catch(function (error) { note.appendChild(errorBox(error)); })
          .then(function () { button.disabled = false; });
      };
    }
    main.appendChild(el("h1", { id: "bulletin-title", text: t("bulletin.title") + " " + week }));
    main.appendChild(el("form", { "class": "controls", id: "controls", onsubmit: function (event) {
      event.preventDefault();
      go(link("bulletin", [], { week: weekInput.value.trim() }));
    } }, [field(t("bulletin.week"), weekInput, t("bulletin.week_hint")),
          el("button", { type: "submit", "class": "primary", id: "show", text: t("common.show") }),
          el("button", { type: "button", "class": "secondary", id: "print", text: t("common.print"), onclick: function () { window.print(); } }),
          el("button", { type: "button", "class": "secondary", id: "download-csv", text: t("bulletin.csv"), onclick: save("csv") }),
          el("button", { type: "button", "class": "secondary", id: "download-xlsx", text: t("bulletin.xlsx"), onclick: save("xlsx") })]));
    main.appendChild(note);
    var area = el("div", { id: "bulletin" }, loading());
    main.appendChild(area);
    API.get("/api/v1/bulletins/weekly", { week: week, format: "json" }).then(function (report) {
      if (token !== renderCount) return;
      area.textContent = "";
      area.appendChild(el("p", { id: "bulletin-range", text: t("bulletin.range", { from: report.from, to: report.to, due: (report.due || "").replace("T", " ") }) }));
      var rates = ["month_visit_compliance", "disbursement_rate"];
      var rows = (report.rows || []).map(function (row) { return Object.assign({}, row); });
      if (!rows.length) { area.appendChild(el("div", { "class": "alert alert-info", text: t("common.no_data") })); return; }
      area.appendChild(sortableTable((report.columns || BULLETIN_COLUMNS).map(function (key) {
        return { key: key, label: t("col." + key), num: ["kind", "id", "name"].indexOf(key) < 0, sortable: false, cell: function (row) {
          var value = row[key];
          if (key === "kind") return label("kind.", value);
          if (key === "name" && row.kind === "department") return label("dept.", value);
          if (rates.indexOf(key) >= 0) return percent(value);
          return value === null || value === undefined ? t("common.none") : String(value);
        } };
      }), rows, {}, function () {}));
      showBulletinSupervision(area, report);
    }).catch(function (error) {
      if (token !== renderCount) return;
      area.textContent = "";
      area.appendChild(errorBox(error));
    });
  }

  // --- closing a month (月度考核定格) -----------------------------------------------------------
  function monthEnd(month) {
    var year = Number(month.slice(0, 4)), m = Number(month.slice(5, 7));
    return new Date(Date.UTC(year, m, 0)).toISOString().slice(0, 10);
  }

  function statusBadge(status) {
    return el("span", { "class": "status-badge" + (status === "closed" ? " closed-badge" : ""), "data-status": status,
                        text: t("months." + status) });
  }

  /* The confirmation before closing: the date, a note, and what closing means. */
  function closeConfirmation(month, onDone) {
    var nextDay = new Date(monthEnd(month) + "T00:00:00Z");
    nextDay.setUTCDate(nextDay.getUTCDate() + 1);
    var first = nextDay.toISOString().slice(0, 10);
    var on = el("input", { type: "date", id: "close-on", name: "on", required: true, min: first,
                           value: today() > first ? today() : first });
    var note = el("input", { id: "close-note", name: "note", size: 30 });
    var message = el("div", { role: "status" });
    var box = el("form", { "class": "card confirm", id: "confirm-close", "data-month": month, onsubmit: function (event) {
      event.preventDefault();
      message.textContent = "";
      var button = box.querySelector("#confirm-close-button");
      button.disabled = true;
      API.post("/api/v1/periods/" + month + "/close", { on: on.value, note: note.value.trim() }).then(function () {
        onDone();
      }).catch(function (error) {
        button.disabled = false;
        message.appendChild(errorBox(error));
      });
    } }, [
      el("h2", { text: t("months.confirm_title", { month: month }) }),
      el("p", { text: t("months.confirm_text", { month: month }) }),
      field(t("months.on"), on), field(t("months.note"), note),
      el("button", { type: "submit", "class": "primary", id: "confirm-close-button", text: t("months.confirm") }),
      el("button", { type: "button", "class": "secondary", id: "cancel-close", text: t("months.cancel"),
                     onclick: function () { box.remove(); } }),
      message
    ]);
    return box;
  }

  function monthsPage(r, token) {
    var saved = remembered();
    var year = /^\d{4}$/.test(r.params.year || "") ? r.params.year : (saved.period || today()).slice(0, 4);
    var yearInput = el("input", { id: "year", name: "year", value: year, required: true, size: 5, pattern: "\\d{4}" });
    main.appendChild(el("h1", { text: t("months.title") + " " + year }));
    main.appendChild(el("form", { "class": "controls", id: "controls", onsubmit: function (event) {
      event.preventDefault();
      go(link("months", [], { year: yearInput.value.trim() }));
    } }, [field(t("months.year"), yearInput), el("button", { type: "submit", "class": "primary", id: "show", text: t("common.show") })]));
    var confirmArea = el("div", { id: "confirm-area" });
    var area = el("div", { id: "months" }, loading());
    main.appendChild(confirmArea);
    main.appendChild(area);
    API.get("/api/v1/periods", { year: year }).then(function (answer) {
      if (token !== renderCount) return;
      area.textContent = "";
      area.appendChild(sortableTable([
        { key: "month", label: t("months.month"), sortable: false, cell: function (row) {
          return el("a", { href: link("month", [row.month]), "class": "month-link", text: row.month });
        } },
        { key: "status", label: t("months.status"), sortable: false, cell: function (row) { return statusBadge(row.status); } },
        { key: "closed_on", label: t("months.closed_on"), sortable: false, cell: function (row) { return row.closed_on || t("common.none"); } },
        { key: "late_correction_count", label: t("months.late"), num: true, sortable: false },
        { key: "action", label: t("months.action"), sortable: false, cell: function (row) {
          if (row.status === "closed") return el("a", { href: link("month", [row.month]), text: t("months.view") });
          if (monthEnd(row.month) >= today()) return "";
          return el("button", { type: "button", "class": "secondary close-month", id: "close-" + row.month, text: t("months.close"),
                                onclick: function () {
                                  confirmArea.textContent = "";
                                  confirmArea.appendChild(closeConfirmation(row.month, function () { go(link("month", [row.month])); }));
                                  confirmArea.querySelector("#close-on").focus();
                                } });
        } }
      ], (answer.items || []).map(function (row) { return Object.assign({ id: row.month }, row); }), {}, function () {}));
    }).catch(function (error) {
      if (token !== renderCount) return;
      area.textContent = "";
      area.appendChild(errorBox(error));
    });
  }

  var PAY_COLUMNS = ["cadre", "unit", "score", "grade", "performance_pay", "rewards", "withheld", "total", "restrictions"];

  function monthPage(r, token) {
    var month = r.parts[0] || "";
    main.appendChild(el("p", { "class": "no-print" }, el("a", { href: link("months", [], { year: month.slice(0, 4) }), id: "back",
                                                           text: "← " + t("months.title") })));
    main.appendChild(el("h1", { id: "month-title", text: t("month.title", { month: month }) }));
    var area = el("div", { id: "month" }, loading());
    main.appendChild(area);
    API.get("/api/v1/periods/" + encodeURIComponent(month)).then(function (report) {
      if (token !== renderCount) return;
      area.textContent = "";
      showMonth(area, month, report, token);
    }).catch(function (error) {
      if (token !== renderCount) return;
      area.textContent = "";
      area.appendChild(errorBox(error));
    });
  }

  function showMonth(area, month, report, token) {
    var closed = report.status === "closed";
    area.appendChild(el("div", { "class": "summary" }, [
      el("div", { "class": "card" }, [el("div", { "class": "muted", text: t("months.status") }),
                                      el("div", { "class": "value", id: "month-status" }, statusBadge(report.status))]),
      closed ? el("div", { "class": "card" }, [el("div", { "class": "muted", text: t("months.closed_on") }),
                                               el("div", { "class": "value", id: "closed-on", text: report.closed_on }),
                                               el("div", { "class": "muted", text: t("rank.rulebook", { v: report.rulebook_version }) })]) : null,
      closed ? el("div", { "class": "card" }, [el("div", { "class": "muted", text: t("month.summary") }),
        el("div", {}, SUBJECT_TYPES.map(function (type) {
          var part = (report.summary || {})[type] || { subjects: 0, grades: {} };
          var grades = GRADES.filter(function (g) { return part.grades[g]; })
            .map(function (g) { return t("grade." + g) + " " + part.grades[g]; }).join("，");
          return el("div", { text: t("month.subjects", { type: t("subject." + type), n: part.subjects }) + (grades ? "（" + grades + "）" : "") });
        }))]) : null
    ]));
    if (!closed) {
      area.appendChild(el("div", { "class": "alert alert-info", id: "not-closed", text: t("month.not_closed") }));
      if (monthEnd(month) < today()) {
        var confirmArea = el("div", { id: "confirm-area" });
        area.appendChild(el("button", { type: "button", "class": "primary close-month", id: "close-" + month, text: t("months.close"),
                                        onclick: function () {
                                          confirmArea.textContent = "";
                                          confirmArea.appendChild(closeConfirmation(month, function () { render(); }));
                                        } }));
        area.appendChild(confirmArea);
      }
    } else {
      var note = el("div", { id: "download-message", role: "status" });
      var save = function (format) {
        return function () {
          note.textContent = "";
          var button = this;
          button.disabled = true;
          API.download("/api/v1/periods/" + month + "/pay-sheet", { format: format }, "pay-sheet-" + month + "." + format)
            .then(function (name) { note.appendChild(el("div", { "class": "alert alert-info no-print", text: t("month.downloaded", { name: name }) })); })
            .catch(function (error) { note.appendChild(errorBox(error)); })
            .then(function () { button.disabled = false; });
        };
      };
      area.appendChild(el("h2", { text: t("month.pay_sheet") }));
      area.appendChild(el("div", { "class": "controls no-print" }, [
        el("button", { type: "button", "class": "secondary", id: "download-pay-csv", text: t("month.download_csv"), onclick: save("csv") }),
        el("button", { type: "button", "class": "secondary", id: "download-pay-xlsx", text: t("month.download_xlsx"), onclick: save("xlsx") }),
        el("button", { type: "button", "class": "secondary", id: "print", text: t("common.print"), onclick: function () { window.print(); } })
      ]));
      area.appendChild(note);
      var sheetArea = el("div", { id: "pay-sheet" }, loading());
      area.appendChild(sheetArea);
      API.get("/api/v1/periods/" + month + "/pay-sheet", { format: "json" }).then(function (sheet) {
        if (token !== renderCount) return;
        sheetArea.textContent = "";
        var rows = (sheet.rows || []).map(function (row) { return Object.assign({ id: row.cadre_id }, row); });
        var totals = sheet.totals || {};
        sheetArea.appendChild(sortableTable(PAY_COLUMNS.map(function (key) {
          var money = ["performance_pay", "rewards", "withheld", "total"].indexOf(key) >= 0;
          return { key: key, label: t(key === "score" ? "rank.score" : key === "grade" ? "rank.grade" : key === "restrictions" ? "pay.restrictions" : "pay." + key),
                   num: money || key === "score", sortable: false, cell: function (row) {
            if (key === "cadre") return el("a", { href: link("subject", ["cadre", row.cadre_id], { period: month, as_of: sheet.as_of }), text: row.cadre || row.cadre_id });
            if (key === "unit") return row.unit || row.unit_id || t("common.none");
            if (key === "score") return el("span", {}, [number(row.score, 2), " ", closedBadge({ status: "closed", closed_on: sheet.closed_on })]);
            if (key === "grade") return gradeBadge(row.grade);
            if (key === "restrictions") return row.restrictions.length ? row.restrictions.join("、") + "（" + row.restrictions_until + "）" : t("common.none");
            return row[key];
          } };
        }), rows, {}, function () {}));
        sheetArea.appendChild(el("p", { id: "pay-totals", text: t("pay.totals") + "：" + t("pay.performance_pay") + " " + totals.performance_pay +
          "，" + t("pay.rewards") + " " + totals.rewards + "，" + t("pay.withheld") + " " + totals.withheld + "，" + t("pay.total") + " " + totals.total }));
      }).catch(function (error) {
        if (token !== renderCount) return;
        sheetArea.textContent = "";
        sheetArea.appendChild(errorBox(error));
      });
      area.appendChild(el("h2", { text: t("month.late") }));
      var late = report.late_corrections || [];
      area.appendChild(late.length ? el("div", { id: "late-corrections" }, sortableTable([
        { key: "event", label: t("month.event"), sortable: false },
        { key: "dated", label: t("month.dated"), sortable: false },
        { key: "recorded_at", label: t("month.recorded_at"), sortable: false, cell: function (row) { return (row.recorded_at || "").replace("T", " ").slice(0, 19); } },
        { key: "source", label: t("month.source"), sortable: false }
      ], late.map(function (row) { return Object.assign({ id: row.event_id }, row); }), {}, function () {}))
        : el("p", { "class": "muted", id: "late-corrections", text: t("month.no_late") }));
      // Re-opening: a reason, and a second click to confirm.
      var reason = el("textarea", { id: "reopen-reason", name: "reason", rows: 2, cols: 50, required: true });
      var reopenOn = el("input", { type: "date", id: "reopen-on", name: "on", required: true, value: today() });
      var reopenMessage = el("div", { role: "status" });
      var confirmReopen = el("button", { type: "submit", "class": "primary", id: "reopen-confirm", text: t("month.reopen_confirm"), hidden: true });
      area.appendChild(el("h2", { "class": "no-print", text: t("month.reopen") }));
      area.appendChild(el("form", { "class": "controls no-print", id: "reopen-form", onsubmit: function (event) {
        event.preventDefault();
        if (confirmReopen.hidden) { confirmReopen.hidden = false; return; }
        confirmReopen.disabled = true;
        API.post("/api/v1/periods/" + month + "/reopen", { on: reopenOn.value, reason: reason.value.trim() })
          .then(function () { render(); })
          .catch(function (error) { confirmReopen.disabled = false; reopenMessage.appendChild(errorBox(error)); });
      } }, [el("p", { "class": "muted", text: t("month.reopen_text") }), field(t("month.reason"), reason), field(t("month.reopen_on"), reopenOn),
            el("button", { type: "submit", "class": "secondary", id: "reopen", text: t("month.reopen") }), confirmReopen, reopenMessage]));
    }
    if ((report.history || []).length) {
      area.appendChild(el("h2", { text: t("month.history") }));
      area.appendChild(el("ul", { id: "month-history" }, report.history.map(function (h) {
        return el("li", { text: [h.on, t("event." + h.event), h.note || h.reason || "", h.by ? "（" + (h.by.username || h.by.id || "") + "）" : ""].join(" ") });
      })));
    }
  }

  /* The bulletin's supervision part: each running campaign's actions against target and
     milestones, and the late and missing reports and overdue problems by unit. */
  function showBulletinSupervision(area, report) {
    var rows = [];
    (report.campaigns || []).forEach(function (campaign) {
      campaign.actions.forEach(function (action) {
        (action.targets.length ? action.targets : [{}]).forEach(function (target) {
          rows.push({ id: action.action_id + "/" + (target.target_id || ""), campaign: campaign.name, action: action.name,
                      target: target.name ? target.name + "（" + target.quantity + " " + target.unit_of_measure + "）" : "",
                      done: target.done, percent: target.percent, bar: action.action_id + "/" + (target.target_id || ""),
                      met: action.milestones_met.map(function (m) { return m.what; }).join("；"),
                      missed: action.milestones_missed.map(function (m) { return m.what + "（" + m.due_on + "）"; }).join("；") });
        });
      });
    });
    if (rows.length) {
      area.appendChild(el("h2", { id: "bulletin-campaigns", text: t("bulletin.campaigns") }));
      area.appendChild(sortableTable([
        { key: "campaign", label: t("campaign.campaign"), sortable: false },
        { key: "action", label: t("bulletin.action"), sortable: false },
        { key: "target", label: t("campaign.target"), sortable: false },
        { key: "done", label: t("campaign.done"), num: true, sortable: false },
        { key: "percent", label: t("campaign.progress"), sortable: false, cell: function (row) { return bar(row.percent, row.bar); } },
        { key: "met", label: t("milestone.met"), sortable: false },
        { key: "missed", label: t("milestone.missed"), sortable: false }
      ], rows, {}, function () {}));
    }
    var lapses = report.lapses || [];
    if (lapses.length) {
      area.appendChild(el("h2", { id: "bulletin-lapses", text: t("bulletin.lapses") }));
      area.appendChild(sortableTable([
        { key: "unit_id", label: t("campaign.unit"), sortable: false },
        { key: "late", label: t("campaign.late"), sortable: false, cell: function (u) { return u.late.map(function (l) { return l.week; }).join(" ") || t("common.none"); } },
        { key: "missing", label: t("campaign.missing"), sortable: false, cell: function (u) { return u.missing.map(function (l) { return l.week; }).join(" ") || t("common.none"); } },
        { key: "overdue_problems", label: t("bulletin.overdue_problems"), sortable: false, cell: function (u) {
          return u.overdue_problems.map(function (p) { return p.description + "（" + p.deadline + "）"; }).join("；") || t("common.none"); } }
      ], lapses.map(function (u) { return Object.assign({ id: u.unit_id }, u); }), {}, function () {}));
    }
  }

  // --- supervision (督查督战): campaigns and the rectification ledger ---------------------------
  function bar(percentValue, id) {
    var value = percentValue === null || percentValue === undefined ? 0 : Number(percentValue);
    return el("span", { "class": "bar-cell" }, [
      el("progress", { max: 100, value: value, "data-bar": id || null, "aria-label": value + "%" }),
      el("span", { "class": "num", text: percentValue === null || percentValue === undefined ? t("common.none") : value.toFixed(1) + "%" })]);
  }

  function campaignsPage(r, token) {
    var saved = remembered();
    var as_of = r.params.as_of || saved.as_of;
    var id = r.parts[0];
    main.appendChild(el("h1", { id: "campaign-title", text: t("campaign.title") }));
    var asOfInput = el("input", { id: "as_of", name: "as_of", type: "date", value: as_of, required: true });
    var picker = el("select", { id: "campaign-pick", name: "campaign" });
    main.appendChild(el("form", { "class": "controls", id: "controls", onsubmit: function (event) {
      event.preventDefault();
      remember({ as_of: asOfInput.value });
      go(link("campaigns", picker.value ? [picker.value] : [], { as_of: asOfInput.value }));
    } }, [field(t("campaign.campaign"), picker), field(t("common.as_of"), asOfInput),
          el("button", { type: "submit", "class": "primary", id: "show", text: t("common.show") }),
          el("button", { type: "button", "class": "secondary", id: "print", text: t("common.print"), onclick: function () { window.print(); } })]));
    var area = el("div", { id: "campaign-view" }, loading());
    main.appendChild(area);
    API.get("/api/v1/campaigns").then(function (answer) {
      if (token !== renderCount) return null;
      var items = answer.items || [];
      items.forEach(function (c) { picker.appendChild(el("option", { value: c.campaign_id, selected: c.campaign_id === id, text: c.name + " (" + c.starts_on + " – " + c.ends_on + ")" })); });
      if (!items.length) { area.replaceChildren(el("div", { "class": "alert alert-info", text: t("campaign.none") })); return null; }
      id = id || items[0].campaign_id;
      return API.get("/api/v1/campaigns/" + encodeURIComponent(id), { as_of: as_of });
    }).then(function (view) {
      if (!view || token !== renderCount) return;
      area.replaceChildren();
      showCampaign(area, view);
    }).catch(function (error) {
      if (token !== renderCount) return;
      area.replaceChildren(errorBox(error));
    });
  }

  function showCampaign(area, view) {
    area.appendChild(el("h2", { id: "campaign-name", text: view.name }));
    area.appendChild(el("p", { "class": "muted", text: t("campaign.range", { from: view.starts_on, to: view.ends_on,
      phase: view.current_phase || t("common.none") }) }));
    (view.actions || []).forEach(function (action) {
      var section = el("section", { "class": "action", "data-action": action.action_id }, [
        el("h3", { text: action.name }),
        el("p", { "class": "muted", text: t("campaign.lead", { lead: action.lead, units: (action.responsible_units || []).join("、") }) })]);
      var rows = [];
      (action.targets || []).forEach(function (target) {
        rows.push({ id: target.target_id, name: target.name, scope: t("campaign.county"), quantity: target.quantity + " " + target.unit_of_measure,
                    done: target.done, percent: target.percent, bar: target.target_id });
        (target.by_township || []).forEach(function (share) {
          rows.push({ id: target.target_id + "/" + share.township_id, name: "", scope: share.township_id,
                      quantity: share.quantity + " " + target.unit_of_measure, done: share.done, percent: share.percent,
                      bar: target.target_id + "/" + share.township_id });
        });
      });
      if (rows.length) {
        section.appendChild(sortableTable([
          { key: "name", label: t("campaign.target"), sortable: false },
          { key: "scope", label: t("campaign.scope"), sortable: false },
          { key: "quantity", label: t("campaign.quantity"), num: true, sortable: false },
          { key: "done", label: t("campaign.done"), num: true, sortable: false },
          { key: "percent", label: t("campaign.progress"), sortable: false, cell: function (row) { return bar(row.percent, row.bar); } }
        ], rows, {}, function () {}));
      }
      if ((action.milestones || []).length) {
        section.appendChild(el("ul", { "class": "milestones" }, action.milestones.map(function (m) {
          return el("li", { "data-status": m.status }, [el("span", { "class": "milestone milestone-" + m.status, text: t("milestone." + m.status) }),
            " " + m.what + " · " + t("campaign.due_on", { d: m.due_on }) + (m.met_on ? " · " + t("campaign.met_on", { d: m.met_on }) : "")]);
        })));
      }
      area.appendChild(section);
    });
    area.appendChild(el("h2", { text: t("campaign.reports") }));
    var units = (view.reports && view.reports.units) || [];
    area.appendChild(units.length ? sortableTable([
      { key: "unit_id", label: t("campaign.unit"), sortable: false },
      { key: "due", label: t("campaign.due"), num: true, sortable: false },
      { key: "on_time", label: t("campaign.on_time"), num: true, sortable: false },
      { key: "late", label: t("campaign.late"), sortable: false, cell: function (u) { return u.late.map(function (l) { return l.week; }).join(" ") || t("common.none"); } },
      { key: "missing", label: t("campaign.missing"), sortable: false, cell: function (u) { return u.missing.join(" ") || t("common.none"); } }
    ], units.map(function (u) { return Object.assign({ id: u.unit_id }, u); }), {}, function () {})
      : el("div", { "class": "alert alert-info", text: t("common.no_data") }));
  }

  var PROBLEM_STATUSES = ["open", "awaiting_verification", "closed", "overdue"];

  function ledgerPage(r, token) {
    var saved = remembered();
    var as_of = r.params.as_of || saved.as_of;
    var status = PROBLEM_STATUSES.indexOf(r.params.status) >= 0 ? r.params.status : "";
    main.appendChild(el("h1", { id: "ledger-title", text: t("ledger.title") }));
    var statusInput = el("select", { id: "status", name: "status" }, [el("option", { value: "", text: t("common.all") })]
      .concat(PROBLEM_STATUSES.map(function (s) { return el("option", { value: s, selected: s === status, text: t("problem." + s) }); })));
    var asOfInput = el("input", { id: "as_of", name: "as_of", type: "date", value: as_of, required: true });
    main.appendChild(el("form", { "class": "controls", id: "controls", onsubmit: function (event) {
      event.preventDefault();
      remember({ as_of: asOfInput.value });
      go(link("ledger", [], { status: statusInput.value, as_of: asOfInput.value }));
    } }, [field(t("ledger.status"), statusInput), field(t("common.as_of"), asOfInput),
          el("button", { type: "submit", "class": "primary", id: "show", text: t("common.show") }),
          el("button", { type: "button", "class": "secondary", id: "print", text: t("common.print"), onclick: function () { window.print(); } })]));
    var area = el("div", { id: "ledger" }, loading());
    main.appendChild(area);
    API.getAll("/api/v1/problems", { status: status, as_of: as_of }).then(function (answer) {
      if (token !== renderCount) return;
      var items = answer.items || [];
      area.replaceChildren();
      if (!items.length) { area.appendChild(el("div", { "class": "alert alert-info", text: t("common.no_data") })); return; }
      area.appendChild(sortableTable([
        { key: "unit_id", label: t("ledger.unit"), sortable: false },
        { key: "township_id", label: t("ledger.township"), sortable: false },
        { key: "source", label: t("ledger.source"), sortable: false, cell: function (p) { return t("psource." + p.source); } },
        { key: "found_on", label: t("ledger.found_on"), sortable: false },
        { key: "description", label: t("ledger.description"), sortable: false },
        { key: "deadline", label: t("ledger.deadline"), sortable: false },
        { key: "status", label: t("ledger.status"), sortable: false, cell: function (p) {
          return el("span", { "class": "problem problem-" + p.status, "data-status": p.status, text: t("problem." + p.status) }); } },
        { key: "measures", label: t("ledger.measures"), sortable: false, cell: function (p) {
          return (p.measures || []).map(function (m) { return m.on + " " + m.measures; }).join("；") || t("common.none"); } },
        { key: "closed_on", label: t("ledger.closed_on"), sortable: false }
      ], items.map(function (p) { return Object.assign({ id: p.problem_id }, p); }), {}, function () {}));
    }).catch(function (error) {
      if (token !== renderCount) return;
      area.replaceChildren(errorBox(error));
    });
  }

  // --- the rulebook (read-only here: changes go through PUT /api/v1/rulebook/<section>) --------
  function rulebookPage(r, token) {
    main.appendChild(el("h1", { text: t("nav.rulebook") }));
    main.appendChild(el("p", { "class": "muted", text: t("rulebook.hint") }));
    var area = el("div", { id: "rulebook" }, loading());
    main.appendChild(area);
    API.get("/api/v1/rulebook", { as_of: r.params.as_of }).then(function (book) {
      if (token !== renderCount) return;
      area.textContent = "";
      area.appendChild(el("p", { id: "rulebook-as-of", text: t("common.as_of") + " " + book.as_of }));
      Object.keys(book.sections).forEach(function (name) {
        var section = book.sections[name];
        var values = section.values || {};
        area.appendChild(el("section", { "class": "card rulebook-section", "data-section": name }, [
          el("h2", { text: name + " · " + t("rank.rulebook", { v: section.version_in_force }) }),
          el("div", { "class": "table-wrap" }, el("table", {}, [
            el("thead", {}, el("tr", {}, [el("th", { text: t("rulebook.key") }), el("th", { text: t("rulebook.value") })])),
            el("tbody", {}, Object.keys(values).sort().map(function (key) {
              return el("tr", { "data-key": key }, [el("td", { text: key }), el("td", { text: JSON.stringify(values[key]) })]);
            }))])),
          el("details", {}, [el("summary", { text: t("rulebook.history") }),
            el("ul", {}, (section.versions || []).map(function (version) {
              var changes = version.changes || version.values || {};
              return el("li", { text: "v" + version.version + (version.effective_from ? " · " + version.effective_from : "") +
                                       (version.reason ? " · " + version.reason : "") + " · " + JSON.stringify(changes) });
            }))])]));
      });
    }).catch(function (error) {
      if (token !== renderCount) return;
      area.textContent = "";
      area.appendChild(errorBox(error));
    });
  }

  // --- the router ---------------------------------------------------------------------------
  var PAGES = { rankings: rankingsPage, subject: subjectPage, progress: progressPage, bulletin: bulletinPage,
                months: monthsPage, month: monthPage, campaigns: campaignsPage, ledger: ledgerPage,
                rulebook: rulebookPage };

  function render() {
    renderCount += 1;
    var token = renderCount;
    var r = route();
    destroyCharts();
    main.textContent = "";
    var signedIn = !!API.principal();
    if (r.page === "login" || !signedIn) {
      var expired = r.page !== "login" && !!API.token();  // a token that has run out or cannot be read
      if (expired) API.setToken(null);
      applyChrome("login");
      if (r.page !== "login") {
        var next = window.location.hash && window.location.hash !== "#/" ? window.location.hash : "";
        window.location.replace(link("login", [], { next: next, expired: expired ? "1" : "" }));
        return;
      }
      loginPage(r);
      return;
    }
    applyChrome(r.page);
    if (!countyToday) {
      /* Quietly: a refused token is the page's own call to report, not this one's (no second redirect). */
      var bearer = API.token();
      window.fetch("/api/v1/today", { headers: { "Accept": "application/json", "Authorization": "Bearer " + bearer },
                                      credentials: "omit" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (clock) { if (clock && clock.today) countyToday = clock.today; })
        .catch(function () {});
    }
    (PAGES[r.page] || rankingsPage)(r, token);
  }

  API.onUnauthorized = function () {
    API.setToken(null);
    window.location.hash = link("login", [], { expired: "1", next: window.location.hash });
  };
  document.getElementById("lang").addEventListener("click", function () {
    window.I18N.setLang(window.I18N.lang() === "en" ? "zh" : "en");
    render();
  });
  document.getElementById("signout").addEventListener("click", function () {
    window.sessionStorage.removeItem("fupin.choices");
    API.signOut().then(function () { go("#/login"); });
  });

  // 等保: a session left alone is ended. After <html data-idle-minutes> (15) minutes without a key,
  // a click, a scroll or a touch, the token is revoked and the sign-in page says why.
  var lastActivity = Date.now();
  ["keydown", "mousedown", "wheel", "scroll", "touchstart"].forEach(function (name) {
    window.addEventListener(name, function () { lastActivity = Date.now(); }, { passive: true, capture: true });
  });
  window.setInterval(function () {
    var minutes = parseFloat(document.documentElement.getAttribute("data-idle-minutes")) || 15;
    if (!API.token() || Date.now() - lastActivity < minutes * 60000) return;
    window.sessionStorage.removeItem("fupin.choices");
    API.signOut().then(function () { window.location.hash = link("login", [], { idle: "1" }); });
  }, 1000);
  window.addEventListener("hashchange", render);
  render();
})();
