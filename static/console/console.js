// AION Console helpers: readiness polling and confirmation dialogs. No external libraries.
window.AION = {
  pollReadiness: function () {
    var table = document.getElementById("readiness");
    if (!table) return;
    var refresh = function () {
      fetch(table.dataset.source, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (body) {
        var badge = document.getElementById("ready-status");
        badge.textContent = body.status; badge.className = "badge " + body.status;
        Object.keys(body.dependencies).forEach(function (name) {
          var row = table.querySelector('tr[data-dep="' + name + '"]');
          if (!row) return;
          var dep = body.dependencies[name];
          row.cells[1].innerHTML = '<span class="badge ' + dep.status + '">' + dep.status + "</span>";
          row.cells[3].textContent = dep.latency_ms;
        });
      }).catch(function () {});
    };
    setInterval(refresh, 5000);
  },
  confirmForm: function (dialogId) {
    var dialog = document.getElementById(dialogId);
    if (dialog && dialog.showModal) dialog.showModal();
    return false;
  }
};
