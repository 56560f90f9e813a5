// Kernel Console pages: live updates (WebSocket, polling fallback) and TTL countdowns. Vanilla JS, no libraries.
(function () {
  "use strict";

  function pad(n) { return n < 10 ? "0" + n : "" + n; }

  function tickCountdowns() {
    var now = Date.now();
    var nodes = document.querySelectorAll(".countdown[data-expires]");
    for (var i = 0; i < nodes.length; i++) {
      var left = Math.floor((Date.parse(nodes[i].dataset.expires) - now) / 1000);
      if (isNaN(left)) continue;
      if (left <= 0) { nodes[i].textContent = "expired"; nodes[i].className = "countdown badge expired"; continue; }
      var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600), m = Math.floor(left % 3600 / 60), s = left % 60;
      nodes[i].textContent = "in " + (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
    }
  }

  var live = document.getElementById("kernel-live");
  if (document.querySelector(".countdown[data-expires]")) { tickCountdowns(); setInterval(tickCountdowns, 1000); }
  if (!live) return;

  var fingerprint = live.dataset.fingerprint;
  var proposalId = live.dataset.proposal || "";
  var reloading = false;

  function changed() {
    if (reloading) return;
    // Never throw away what someone is typing in a confirmation dialog: flag the page stale instead.
    if (document.querySelector("dialog[open]")) {
      var stale = document.getElementById("kernel-stale");
      if (stale) stale.hidden = false;
      return;
    }
    reloading = true;
    window.location.reload();
  }

  var pollTimer = null;
  function poll() {
    fetch(live.dataset.poll, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) { if (body && body.fingerprint !== fingerprint) changed(); })
      .catch(function () {});
  }
  function startPolling() { if (!pollTimer) pollTimer = setInterval(poll, 5000); }

  if (!("WebSocket" in window)) { startPolling(); return; }
  var attempts = 0;
  function connect() {
    var socket;
    try {
      socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + live.dataset.ws);
    } catch (e) { startPolling(); return; }
    socket.onopen = function () { attempts = 0; if (pollTimer) { clearInterval(pollTimer); pollTimer = null; } poll(); };
    socket.onmessage = function (event) {
      var message = {};
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (!proposalId || message.id === proposalId) changed();
    };
    socket.onclose = function () {
      startPolling();  // keep the page fresh while the socket is away, and retry with backoff
      attempts += 1;
      if (attempts <= 6) setTimeout(connect, Math.min(30000, 1000 * Math.pow(2, attempts)));
    };
  }
  connect();
})();
