// Runs before the calendar page is drawn. It tells the server the screen's size
// class in a cookie (phone below 600 px, tablet below 900 px), from which the
// server picks the default view: the agenda on a phone, and a week of one day
// (phone) or three (tablet). When the page was drawn for another size class and
// the address asks for no particular view or number of days, it is drawn again.
// Without this file the server's defaults (a full week) apply.
(function () {
  "use strict";
  var screen = window.matchMedia("(max-width: 599px)").matches
    ? "phone"
    : window.matchMedia("(max-width: 899px)").matches ? "tablet" : "wide";
  var drawnFor = document.querySelector('meta[name="tend-calendar-screen"]');
  if (!drawnFor || drawnFor.content === screen) return;
  // The server was told already and still drew another size: leave it at that
  // (cookies refused, say), rather than drawing again and again.
  if (document.cookie.split("; ").indexOf("tend_screen=" + screen) !== -1) return;
  document.cookie = "tend_screen=" + screen + "; path=/; max-age=31536000; samesite=lax";
  if (document.cookie.split("; ").indexOf("tend_screen=" + screen) === -1) return;
  var params = new URLSearchParams(window.location.search);
  var view = params.get("view");
  if (view && !(view === "week" && !params.get("days"))) return;
  window.location.replace(window.location.href);
})();
