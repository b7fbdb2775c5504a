// SCHEDULING enhancements. Every form and link works without this file.
(function () {
  "use strict";

  function fold(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/['’]/g, "").toLowerCase();
  }

  function pad(number) {
    return String(number).padStart(2, "0");
  }

  function localValue(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      "T" + pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  // The end follows the start and the service's usual length until the user edits it.
  function wireEnd(form) {
    const start = form.querySelector("[name=start]");
    const end = form.querySelector("[name=end]");
    const service = form.querySelector("[name=service]");
    if (!start || !end) return;
    let endTouched = end.value !== "";
    end.addEventListener("input", () => { endTouched = end.value !== ""; });
    function minutes() {
      if (!service || !service.selectedOptions.length) return null;
      const match = service.selectedOptions[0].textContent.match(/(\d+) min\s*$/);
      return match ? parseInt(match[1], 10) : null;
    }
    function update() {
      if (endTouched || !start.value) return;
      const length = minutes();
      if (!length) return;
      // Parsed as local wall-clock time; the server applies the practice's zone.
      const parts = start.value.match(/^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/);
      if (!parts) return;
      const begin = new Date(+parts[1], +parts[2] - 1, +parts[3], +parts[4], +parts[5]);
      end.value = localValue(new Date(begin.getTime() + length * 60000));
    }
    start.addEventListener("change", update);
    if (service) service.addEventListener("change", () => { if (!endTouched) update(); });
    update();
  }

  function wireRecurrence(form) {
    const repeat = form.querySelector("[name=repeat]");
    const details = form.querySelector(".recurrence-details");
    if (!repeat || !details) return;
    const sync = () => { details.hidden = repeat.value === ""; };
    repeat.addEventListener("change", sync);
    sync();
  }

  // A filter box over the patient list (accent- and case-insensitive).
  function wirePatientFilter(form) {
    const select = form.querySelector("select[data-patient-select]");
    if (!select) return;
    const box = document.createElement("input");
    box.type = "search";
    box.className = "patient-filter";
    box.placeholder = "Filter patients by name";
    box.setAttribute("aria-label", "Filter the patient list");
    select.parentNode.insertBefore(box, select);
    box.addEventListener("input", () => {
      const words = fold(box.value).split(/\s+/).filter(Boolean);
      Array.from(select.options).forEach((option) => {
        const name = fold(option.textContent);
        option.hidden = !option.selected && !words.every((word) => name.includes(word));
      });
    });
  }

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
    document.querySelectorAll("form[data-appointment-form]").forEach((form) => {
      wireEnd(form);
      wireRecurrence(form);
      wirePatientFilter(form);
    });
  });
})();
