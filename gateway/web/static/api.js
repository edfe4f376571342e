/* The JSON API from the pages: the bearer token lives in sessionStorage (gone when the tab closes);
   every call sends it, and the API alone decides what a role may see. */
(function () {
  "use strict";
  var TOKEN = "fupin.token";

  function token() {
    try { return window.sessionStorage.getItem(TOKEN); } catch (e) { return null; }
  }

  function setToken(value) {
    if (value) window.sessionStorage.setItem(TOKEN, value);
    else window.sessionStorage.removeItem(TOKEN);
  }

  /* Who the token says we are (for display only: the API checks the signature, not us). */
  function principal() {
    var raw = token();
    if (!raw) return null;
    try {
      var part = raw.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      while (part.length % 4) part += "=";
      var text = decodeURIComponent(Array.prototype.map.call(window.atob(part), function (c) {
        return "%" + ("00" + c.charCodeAt(0).toString(16)).slice(-2);
      }).join(""));
      var claims = JSON.parse(text);
      if (claims.exp && claims.exp * 1000 < Date.now()) return null;
      return { username: claims.name, role: claims.role, scope: claims.scope || {} };
    } catch (e) {
      return null;
    }
  }

  /* An API error: status, code, message and details as the API sent them. */
  function ApiError(status, body) {
    var error = (body && body.error) || {};
    this.status = status;
    this.code = error.code || "http_" + status;
    this.message = error.message || ("HTTP " + status);
    this.details = error.details || {};
  }

  function query(params) {
    var parts = [];
    Object.keys(params || {}).forEach(function (key) {
      var value = params[key];
      if (value !== undefined && value !== null && value !== "") {
        parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(value));
      }
    });
    return parts.length ? "?" + parts.join("&") : "";
  }

  function send(method, path, params, body) {
    var headers = { "Accept": "application/json" };
    var bearer = token();
    if (bearer) headers["Authorization"] = "Bearer " + bearer;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return window.fetch(path + query(params), {
      method: method, headers: headers, credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).catch(function () {
      throw new ApiError(0, { error: { code: "network", message: window.I18N.t("error.network") } });
    });
  }

  function failure(response) {
    return response.json().catch(function () { return null; }).then(function (body) {
      var error = new ApiError(response.status, body);
      if (response.status === 401 && window.API.onUnauthorized) window.API.onUnauthorized(error);
      throw error;
    });
  }

  function get(path, params) {
    return send("GET", path, params).then(function (response) {
      return response.ok ? response.json() : failure(response);
    });
  }

  function post(path, body) {
    return send("POST", path, undefined, body || {}).then(function (response) {
      return response.ok ? response.json() : failure(response);
    });
  }

  /* Every page of a list (`items` + `next_cursor`), at most `maxPages` of 500. */
  function getAll(path, params, maxPages) {
    var items = [], first = null, pages = 0;
    function next(cursor) {
      var p = Object.assign({}, params, { limit: 500, cursor: cursor });
      return get(path, p).then(function (page) {
        first = first || page;
        items = items.concat(page.items || []);
        pages += 1;
        if (page.next_cursor && pages < (maxPages || 20)) return next(page.next_cursor);
        return Object.assign({}, first, { items: items, next_cursor: page.next_cursor || null });
      });
    }
    return next(null);
  }

  function signIn(username, password) {
    return send("POST", "/api/v1/auth/token", null, { username: username, password: password })
      .then(function (response) {
        if (!response.ok) {
          return response.json().catch(function () { return null; }).then(function (body) {
            throw new ApiError(response.status, body);
          });
        }
        return response.json();
      })
      .then(function (answer) { setToken(answer.access_token); return principal(); });
  }

  /* Sign out: the API revokes the token (refused from now on), then we forget it. */
  function signOut() {
    var had = token();
    setToken(null);
    if (!had) return Promise.resolve();
    return window.fetch("/api/v1/auth/logout", {
      method: "POST", headers: { "Accept": "application/json", "Authorization": "Bearer " + had }, credentials: "omit"
    }).catch(function () { return null; });
  }

  /* A file download that needs the token: fetch it with the header, save it through a Blob. */
  function download(path, params, fallbackName) {
    return send("GET", path, params).then(function (response) {
      if (!response.ok) return failure(response);
      var disposition = response.headers.get("Content-Disposition") || "";
      var match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
      var name = match ? decodeURIComponent(match[1]) : fallbackName;
      return response.blob().then(function (blob) {
        var url = URL.createObjectURL(blob);
        var link = document.createElement("a");
        link.href = url;
        link.download = name;
        link.hidden = true;
        document.body.appendChild(link);
        link.click();
        window.setTimeout(function () { URL.revokeObjectURL(url); link.remove(); }, 10000);
        return name;
      });
    });
  }

  window.API = {
    get: get, post: post, getAll: getAll, signIn: signIn, signOut: signOut, download: download, token: token, setToken: setToken,
    principal: principal, ApiError: ApiError, onUnauthorized: null
  };
})();
