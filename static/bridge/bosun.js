// The Bridge's glue: live indicator and resync, new list rows, countdowns, dialogs, copy, selection.
(function () {
  "use strict";

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  // --- live / offline, and a resync after a reconnect ------------------------------------------
  var everOpen = false;
  function indicator(state, text) {
    var el = $("#live-indicator");
    if (!el) return;
    el.dataset.state = state;
    $(".live-text", el).textContent = text;
  }
  function resync() {
    $all("[data-resync]").forEach(function (region) {
      if (!region.id) return;
      htmx.ajax("GET", window.location.href, { target: "#" + region.id, select: "#" + region.id, swap: "outerHTML" });
    });
  }
  document.addEventListener("htmx:wsOpen", function () {
    indicator("live", "live");
    if (everOpen) resync();  // changes made while we were away
    everOpen = true;
  });
  document.addEventListener("htmx:wsClose", function () { indicator("offline", "offline — reconnecting"); });
  document.addEventListener("htmx:wsError", function () { indicator("offline", "offline — reconnecting"); });
  // While offline, what a control would act on may be stale: controls wait for the connection.
  function controlsEnabled(enabled) {
    document.body.classList.toggle("is-offline", !enabled);
    $all("[data-control]").forEach(function (el) { el.disabled = !enabled; });
  }
  document.addEventListener("htmx:wsOpen", function () { controlsEnabled(true); });
  document.addEventListener("htmx:wsClose", function () { controlsEnabled(false); });
  document.addEventListener("htmx:afterSettle", function () {
    var live = $("#live-indicator");
    if (live && live.dataset.state === "offline") controlsEnabled(false);
  });

  // --- a sequence that is new to the list: insert it at the top when it matches the filters -----
  function matches(row, rows) {
    var f = rows.dataset;
    if (f.filterService && row.dataset.service !== f.filterService) return false;
    if (f.filterSequence && row.dataset.sequence !== f.filterSequence) return false;
    if (f.filterStage && (" " + row.dataset.stages + " ").indexOf(" " + f.filterStage + " ") < 0) return false;
    if (f.filterState && row.dataset.state !== f.filterState) return false;
    return true;
  }
  function insertNewRow(row) {
    var rows = $("#sequence-rows[data-live-insert]");
    if (!rows || !row.dataset || row.dataset.newRow !== "true" || !matches(row, rows)) return;
    row.removeAttribute("hx-swap-oob");
    $all(".empty-row", rows).forEach(function (el) { el.remove(); });
    rows.insertBefore(row, rows.firstChild);
    htmx.process(row);
  }
  // Pushed fragments swap into the elements with their ids; a fragment this page does not show is
  // dropped quietly (or, a new list row, inserted), so htmx never reports a missing target.
  htmx.defineExtension("bosun-live", {
    transformResponse: function (text) {
      var template = document.createElement("template");
      template.innerHTML = text;
      Array.prototype.slice.call(template.content.children).forEach(function (el) {
        if (el.id && document.getElementById(el.id)) return;
        el.remove();
        insertNewRow(el);
      });
      return template.innerHTML;
    }
  });

  // --- a job's log follows its output, unless the reader scrolled up --------------------------
  function followLogs(root) {
    $all("pre[data-follow]", root).forEach(function (pre) { pre.scrollTop = pre.scrollHeight; });
  }
  document.addEventListener("DOMContentLoaded", function () { followLogs(document); });
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var old = event.detail.target && $("pre[data-follow]", event.detail.target);
    if (old) event.detail.target.dataset.atBottom = (old.scrollHeight - old.scrollTop - old.clientHeight < 24);
  });
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.dataset && target.dataset.atBottom !== "false") followLogs(target.parentNode || document);
  });

  // --- the log viewer: search (narrowing to the hits), and following a running job's new lines --------
  function logSearch(form) {
    var view = $("#log-lines"), input = $("[data-log-query]", form), only = $("[data-log-only]", form);
    if (!view || !input) return;
    var needle = input.value.trim().toLowerCase(), hits = 0;
    $all(".log-line", view).forEach(function (line) {
      var hit = !!needle && $(".lt", line).textContent.toLowerCase().indexOf(needle) >= 0;
      line.classList.toggle("hit", hit);
      line.classList.remove("current");
      if (hit) hits += 1;
    });
    view.classList.toggle("only-hits", !!needle && only.checked);
    var count = $("[data-log-count]", form);
    if (count) count.textContent = needle ? hits + " matching line" + (hits === 1 ? "" : "s") : "";
    var url = new URL(window.location.href);
    if (needle) url.searchParams.set("q", input.value.trim()); else url.searchParams.delete("q");
    if (needle && only.checked) url.searchParams.set("only", "1"); else url.searchParams.delete("only");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  function nextHit(form) {
    var hits = $all("#log-lines .log-line.hit");
    if (!hits.length) return;
    var current = $("#log-lines .log-line.current"), index = hits.indexOf(current);
    if (current) current.classList.remove("current");
    var next = hits[(index + 1) % hits.length];
    next.classList.add("current");
    next.scrollIntoView({ block: "center" });
    setFollow(false);
  }
  document.addEventListener("input", function (event) {
    var form = event.target.closest("[data-log-search]");
    if (form) logSearch(form);
  });
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("[data-log-search]");
    if (form) { event.preventDefault(); logSearch(form); nextHit(form); }
  });

  var following = true, polling = false;
  function setFollow(on) {
    var button = $("[data-log-follow]");
    following = on;
    if (!button) return;
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.textContent = on ? "‖ Pause" : "▶ Follow";
    if (on) { var view = $("#log-lines"); view.scrollTop = view.scrollHeight; pollLog(); }
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-log-follow]")) setFollow(!following);
  });
  function pollLog() {
    var view = $("#log-lines[data-live]");
    if (!view || polling || !following) return;
    polling = true;
    var form = $("[data-log-search]"), query = form ? $("[data-log-query]", form).value.trim() : "";
    var url = view.dataset.live + "?after=" + view.dataset.ended + "&cut=" + view.dataset.cut + "&q=" + encodeURIComponent(query);
    fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error(response.status);
      return response.text();
    }).then(function (text) {
      var template = document.createElement("template");
      template.innerHTML = text;
      var update = template.content.querySelector("[data-log-update]");
      if (!update) return;
      var first = parseInt(update.dataset.first, 10);
      $all(".log-line, .log-empty", view).forEach(function (line) {
        if (!line.id || parseInt(line.id.slice(1), 10) > first) line.remove();
      });
      Array.prototype.slice.call(update.children).forEach(function (child) { view.appendChild(child); });
      view.dataset.ended = update.dataset.ended;
      view.dataset.cut = update.dataset.cut;
      var state = $("#log-state");
      if (state) { state.textContent = update.dataset.state; state.className = "badge " + update.dataset.stateCss; }
      var size = $("#log-size");
      if (size) size.textContent = update.dataset.size;
      if (form) logSearch(form);
      if (following) view.scrollTop = view.scrollHeight;
      if (update.dataset.running !== "true") {
        view.removeAttribute("data-live");
        var button = $("[data-log-follow]");
        if (button) button.remove();
      }
    }).catch(function () { /* the next turn asks again */ }).then(function () { polling = false; });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var view = $("#log-lines");
    if (!view) return;
    if (!window.location.hash) view.scrollTop = view.scrollHeight;
    else { var line = document.getElementById(window.location.hash.slice(1)); if (line) { following = false; setFollow(false); line.scrollIntoView({ block: "center" }); } }
    view.addEventListener("scroll", function () {  // scrolled up to read: stop following
      if (following && $("[data-log-follow]") && view.scrollHeight - view.scrollTop - view.clientHeight > 40) setFollow(false);
    });
    setInterval(pollLog, 1500);
  });

  // --- countdowns tick --------------------------------------------------------------------------
  function human(seconds) {
    if (seconds <= 0) return "due";
    var m = Math.floor(seconds / 60), s = seconds % 60, h = Math.floor(m / 60);
    if (h) return h + "h " + (m % 60) + "m";
    if (m) return m + "m " + s + "s";
    return s + "s";
  }
  function tick() {
    var now = Date.now();
    $all(".countdown[data-deadline]").forEach(function (el) {
      var left = Math.round((Date.parse(el.dataset.deadline) - now) / 1000);
      var out = $(".remaining", el);
      if (out) out.textContent = human(left);
      el.classList.toggle("overdue", left <= 0);
    });
    $all(".elapsed[data-since]").forEach(function (el) {
      var since = Math.max(0, Math.round((now - Date.parse(el.dataset.since)) / 1000));
      var out = $(".since", el);
      if (out) out.textContent = since ? human(since) : "0s";
    });
  }
  setInterval(tick, 1000);

  // --- dialogs, copy buttons, project switcher ---------------------------------------------------
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog && dialog.showModal) { dialog.showModal(); var first = $("input:checked, input, button", dialog); if (first) first.focus(); }
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) { closer.closest("dialog").close(); return; }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = $(copy.dataset.copy);
      var text = source ? source.textContent : "";
      var done = function () { copy.textContent = "Copied"; setTimeout(function () { copy.textContent = "Copy"; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, done);
      } else {
        var area = document.createElement("textarea");
        area.value = text; document.body.appendChild(area); area.select();
        try { document.execCommand("copy"); } catch (e) { /* the text stays selectable */ }
        area.remove(); done();
      }
    }
  });
  document.addEventListener("change", function (event) {
    var select = event.target.closest("[data-project-switcher] select");
    if (select) window.location.href = select.value ? "/bridge/project/" + encodeURIComponent(select.value) + "/" : "/bridge/";
  });

  // --- deep links: keep the stage or event of the URL selected, also after a live re-render --------
  function select(scroll) {
    var path = window.location.pathname;
    var stage = path.match(/\/stage\/([^/]+)$/), ev = path.match(/\/event\/([^/]+)$/);
    var target = null;
    if (stage) target = document.getElementById("stage-" + decodeURIComponent(stage[1]));
    if (ev) {
      target = document.getElementById("event-" + decodeURIComponent(ev[1]));
      var details = target && $("details", target);
      if (details) details.open = true;
    }
    if (target) {
      target.classList.add("selected");
      if (scroll) target.scrollIntoView({ block: "center" });
    }
  }
  document.addEventListener("DOMContentLoaded", function () { select(true); tick(); });
  document.addEventListener("htmx:afterSettle", function () { select(false); tick(); });
  document.addEventListener("htmx:oobAfterSwap", function () { select(false); tick(); });
})();
