// otel-autoheal page: optional enhancements. The pages work without this script.
// - live: polls /api/live (small JSON) every few seconds while the tab is visible; when an
//   occurrence was recorded it fetches this same page and swaps the [data-live-region] parts
//   (server-rendered, escaped HTML parsed by DOMParser: scripts in it never run).
// - relative times ("3 min ago") are kept current; the absolute time is in each title.
// - filter selects apply on change.
(function () {
  'use strict';
  var POLL_MS = 3000;
  var MAX_BACKOFF_MS = 60000;

  function relative(ts) {
    var s = Date.now() / 1000 - ts, future = s < 0, units = [[31536000, 'y'], [86400, 'd'], [3600, 'h'], [60, 'min']];
    s = Math.abs(s);
    for (var i = 0; i < units.length; i++) {
      if (s >= units[i][0]) {
        var text = Math.floor(s / units[i][0]) + ' ' + units[i][1];
        return future ? 'in ' + text : text + ' ago';
      }
    }
    return 'just now';
  }

  function refreshTimes(root) {
    var times = (root || document).querySelectorAll('time[data-ts]');
    for (var i = 0; i < times.length; i++) times[i].textContent = relative(Number(times[i].getAttribute('data-ts')));
  }

  function swapRegions(html) {
    var fresh = new DOMParser().parseFromString(html, 'text/html');
    var regions = document.querySelectorAll('[data-live-region]');
    for (var i = 0; i < regions.length; i++) {
      var id = regions[i].id, replacement = id && fresh.getElementById(id);
      if (replacement) regions[i].replaceWith(document.importNode(replacement, true));
    }
    refreshTimes(document);
  }

  function live() {
    var body = document.body, token = body.getAttribute('data-live');
    if (token === null || !window.fetch || !window.DOMParser) return;
    var delay = POLL_MS, note = document.getElementById('live-note');
    function schedule() { setTimeout(tick, delay); }
    function tick() {
      if (document.hidden) { schedule(); return; }
      fetch('/api/live', { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(function (data) {
          delay = POLL_MS;
          if (String(data.token) === token) return null;
          return fetch(location.href, { credentials: 'same-origin' }).then(function (r) {
            if (!r.ok) throw new Error(String(r.status));
            return r.text();
          }).then(function (html) {
            token = String(data.token);
            body.setAttribute('data-live', token);
            swapRegions(html);
            if (note) note.textContent = 'Updated ' + new Date().toLocaleTimeString();
          });
        })
        .catch(function () { delay = Math.min(delay * 2, MAX_BACKOFF_MS); })
        .then(schedule);
    }
    schedule();
  }

  function autoSubmit() {
    var form = document.querySelector('form.filters');
    if (!form) return;
    var selects = form.querySelectorAll('select');
    for (var i = 0; i < selects.length; i++) selects[i].addEventListener('change', function () { form.submit(); });
  }

  document.addEventListener('DOMContentLoaded', function () {
    refreshTimes(document);
    setInterval(function () { refreshTimes(document); }, 30000);
    autoSubmit();
    live();
  });
})();
