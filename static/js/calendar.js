// SCHEDULING calendar enhancements. Every link works without this file.
(function () {
  "use strict";

  // Week and day views: Left and Right move between days (or clinicians), to the
  // first appointment of the neighbouring column, else to its heading.
  function wireDayKeys(grid) {
    const columns = Array.from(grid.querySelectorAll("[data-day-column]"));
    grid.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
      if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
      const column = event.target.closest("[data-day-column]");
      if (!column) return;
      const index = columns.indexOf(column) + (event.key === "ArrowRight" ? 1 : -1);
      const next = columns[index];
      if (!next) return;
      const target = next.querySelector("a.cal-entry") || next.querySelector(".cal-col-head a");
      if (!target) return;
      event.preventDefault();
      target.focus();
    });
  }

  // The skip link moves focus (not only the scroll position) to the first
  // appointment, and brings it to the middle of the screen.
  function wireSkipLink(link) {
    link.addEventListener("click", (event) => {
      const target = document.getElementById("first-appointment");
      if (!target) return;
      event.preventDefault();
      target.scrollIntoView({ block: "center" });
      target.focus();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-day-grid]").forEach(wireDayKeys);
    document.querySelectorAll("a.cal-skip").forEach(wireSkipLink);
  });
})();
