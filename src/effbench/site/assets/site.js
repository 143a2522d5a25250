// effbench site: every filter and selection lives in the address (query or hash), so a pasted link opens
// the same view. Reading accepts both ?k=v and #k=v (the hash wins); changes are written to the hash,
// which works for pages opened from disk as well as from a static host.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("site-data").textContent || "{}");

  function readParams() {
    var out = {};
    [location.search.replace(/^\?/, ""), location.hash.replace(/^#/, "")].forEach(function (part) {
      new URLSearchParams(part).forEach(function (v, k) { out[k] = v; });
    });
    return out;
  }
  var params = readParams();

  function writeParams() {
    var qs = new URLSearchParams();
    Object.keys(params).sort().forEach(function (k) { if (params[k]) qs.set(k, params[k]); });
    var s = qs.toString();
    history.replaceState(null, "", location.pathname + location.search + (s ? "#" + s : ""));
  }

  function inRange(t) {
    var day = (t || "").slice(0, 10);
    return (!params.from || day >= params.from) && (!params.to || day <= params.to);
  }

  var FIELDS = ["model", "device", "backend", "precision", "batch", "resolution"];

  function filterCells() {
    var rows = document.querySelectorAll("tr.cell");
    if (!rows.length) return;
    var shown = 0;
    rows.forEach(function (tr) {
      var ok = FIELDS.every(function (f) { return !params[f] || tr.dataset[f] === params[f]; }) && inRange(tr.dataset.t);
      tr.hidden = !ok;
      if (ok) shown++;
    });
    document.querySelectorAll(".shown").forEach(function (el) {
      el.textContent = shown + " of " + rows.length + " cell(s) shown";
    });
    document.body.setAttribute("data-shown", String(shown));
  }

  function text(v) { return v === null || v === undefined ? "" : (typeof v === "object" ? JSON.stringify(v) : String(v)); }

  function differences(a, b) {
    var out = [];
    FIELDS.concat(["scenario"]).forEach(function (f) {
      if (text(a[f]) !== text(b[f])) out.push([f, a[f], b[f]]);
    });
    [["settings", "setting "], ["versions", "version "]].forEach(function (pair) {
      var x = a[pair[0]] || {}, y = b[pair[0]] || {};
      Object.keys(Object.assign({}, x, y)).sort().forEach(function (k) {
        if (text(x[k]) !== text(y[k])) out.push([pair[1] + k, x[k], y[k]]);
      });
    });
    return out;
  }

  function table(head, rows) {
    var t = document.createElement("table");
    t.className = "data";
    var tr = t.createTHead().insertRow();
    head.forEach(function (h) { var th = document.createElement("th"); th.textContent = h; tr.appendChild(th); });
    var body = t.createTBody();
    rows.forEach(function (r) {
      var row = body.insertRow();
      r.forEach(function (c) { row.insertCell().textContent = text(c) || "–"; });
    });
    return t;
  }

  function ratioLine(ma, mb) {
    if (!ma || !mb) return "no median on one side";
    var r = mb / ma;
    return "B / A median ratio " + r.toFixed(3) + " (" + (r >= 1 ? "+" : "") + ((r - 1) * 100).toFixed(1) + "%)";
  }

  var loading = 0, tried = {};

  function compareCells() {
    var box = document.getElementById("compare");
    if (!box) return;
    box.textContent = "";
    if (!params.a || !params.b) return;
    var cells = window.effbenchCells || {};
    var missing = [params.a, params.b].filter(function (k) { return !cells[k] && !tried[k]; });
    if (missing.length) {  // each cell's summary is a small script beside the data (data/compare/)
      loading += missing.length;
      missing.forEach(function (key) {
        tried[key] = true;
        var s = document.createElement("script");
        s.src = "data/compare/" + encodeURIComponent(key) + ".js";
        s.onload = s.onerror = function () { if (--loading === 0) compareCells(); };
        document.head.appendChild(s);
      });
      return;
    }
    if (loading) return;
    var a = cells[params.a], b = cells[params.b];
    if (!a || !b) { box.textContent = "No cell with key " + (!a ? params.a : params.b) + " in this site."; return; }
    var diffs = differences(a, b);
    var h = document.createElement("h2");
    h.textContent = "A: " + a.model + " · " + a.backend + " · " + a.device + "  vs  B: " + b.model + " · " + b.backend + " · " + b.device;
    var p = document.createElement("p");
    p.className = "ratio";
    p.textContent = ratioLine(a.median, b.median) + "; " + diffs.length + " difference(s):";
    box.appendChild(h); box.appendChild(p);
    box.appendChild(table(["differs in", "A", "B"], diffs));
  }

  function matches(pt, ref) {
    return !!ref && ((pt.commit && pt.commit.indexOf(ref) === 0) || pt.tag === ref);
  }

  function median(xs) {
    var s = xs.slice().sort(function (x, y) { return x - y; });
    var n = s.length;
    return n ? (n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : null;
  }

  function compareRuns() {
    var box = document.getElementById("ab");
    if (!box || !data.points) return;
    box.textContent = "";
    document.querySelectorAll("tr.run").forEach(function (tr) {
      tr.hidden = !inRange(tr.dataset.t);
      tr.classList.toggle("side-a", matches(tr.dataset, params.a));
      tr.classList.toggle("side-b", matches(tr.dataset, params.b));
    });
    document.querySelectorAll("circle.run").forEach(function (c) {
      c.style.display = inRange(c.dataset.t) ? "" : "none";
    });
    var visible = data.points.filter(function (p) { return inRange(p.t); });
    document.body.setAttribute("data-shown", String(visible.length));
    if (!params.a || !params.b) return;
    var okPts = visible.filter(function (p) { return p.status === "ok" && p.median; });
    var A = okPts.filter(function (p) { return matches(p, params.a); });
    var B = okPts.filter(function (p) { return matches(p, params.b); });
    var h = document.createElement("h2");
    h.textContent = "A " + params.a + " (" + A.length + " run(s)) vs B " + params.b + " (" + B.length + " run(s))";
    box.appendChild(h);
    if (!A.length || !B.length) { box.appendChild(document.createTextNode("No ok run for " + (!A.length ? "A" : "B") + " in this range.")); return; }
    var p = document.createElement("p");
    p.className = "ratio";
    var diffs = differences({versions: A[A.length - 1].versions}, {versions: B[B.length - 1].versions});
    p.textContent = ratioLine(median(A.map(function (x) { return x.median; })), median(B.map(function (x) { return x.median; }))) +
      "; " + diffs.length + " difference(s) between the newest runs:";
    box.appendChild(p);
    box.appendChild(table(["differs in", "A", "B"], diffs));
  }

  function apply() { filterCells(); compareCells(); compareRuns(); }

  document.querySelectorAll("[data-filter]").forEach(function (el) {
    var key = el.getAttribute("data-filter");
    if (params[key]) el.value = params[key];
    el.addEventListener("change", function () { params[key] = el.value; writeParams(); apply(); });
  });
  window.addEventListener("hashchange", function () {
    params = readParams();
    document.querySelectorAll("[data-filter]").forEach(function (el) { el.value = params[el.getAttribute("data-filter")] || ""; });
    apply();
  });
  apply();

  var figs = JSON.parse(document.getElementById("effbench-figures").textContent || "{}");
  var ids = Object.keys(figs);
  var config = {displaylogo: false, responsive: true};
  Promise.all(ids.map(function (id) {
    var el = document.getElementById(id);
    return el && window.Plotly ? Plotly.newPlot(el, figs[id].data, figs[id].layout, config) : null;
  })).then(function () { document.body.setAttribute("data-ready", String(ids.length)); });
})();
