// Runs before the calendar page is drawn: a phone that asked for no particular
// view gets the agenda, and a week view on a narrow screen shows one or three
// days. Links and forms carry the choice from then on; without this file the
// server's defaults apply.
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var narrow = window.matchMedia("(max-width: 599px)").matches;
  var medium = window.matchMedia("(max-width: 899px)").matches;
  var view = params.get("view");
  if (!view && narrow) {
    params.set("view", "agenda");
  } else if (view === "week" && !params.get("days") && medium) {
    params.set("days", narrow ? "1" : "3");
  } else {
    return;
  }
  window.location.replace(window.location.pathname + "?" + params.toString());
})();
