// The appointment form's enhancements. The form works without this file: the
// native controls stay in it and are what is submitted.
(function () {
  "use strict";

  function fold(text) {
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/['’]/g, "").toLowerCase();
  }

  function pad(number) {
    return String(number).padStart(2, "0");
  }

  // Wall-clock values ("2026-03-09T09:00") as minutes, computed in UTC so that the
  // browser's own zone and its clock changes never shift them.
  function wallMinutes(value) {
    const parts = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value || "");
    if (!parts) return null;
    return Date.UTC(+parts[1], +parts[2] - 1, +parts[3], +parts[4], +parts[5]) / 60000;
  }

  function wallValue(minutes) {
    const date = new Date(minutes * 60000);
    return date.getUTCFullYear() + "-" + pad(date.getUTCMonth() + 1) + "-" +
      pad(date.getUTCDate()) + "T" + pad(date.getUTCHours()) + ":" + pad(date.getUTCMinutes());
  }

  // Moving the start moves the end by the same amount, so a rescheduled appointment
  // keeps its length; an empty end follows the service's usual length. Once the end
  // is changed by hand it is left alone.
  function wireEnd(form) {
    const start = form.querySelector("[name=start]");
    const end = form.querySelector("[name=end]");
    const service = form.querySelector("[name=service]");
    if (!start || !end) return;
    let endTouched = false;
    let endFromService = false;
    let previousStart = wallMinutes(start.value);

    function serviceMinutes() {
      if (!service || !service.selectedOptions.length) return null;
      const match = service.selectedOptions[0].textContent.match(/(\d+) min\s*$/);
      return match ? parseInt(match[1], 10) : null;
    }

    function endFromLength() {
      const begin = wallMinutes(start.value);
      const length = serviceMinutes();
      if (begin === null || !length) return;
      end.value = wallValue(begin + length);
      endFromService = true;
    }

    function startMoved() {
      const begin = wallMinutes(start.value);
      if (begin === null) return; // half-typed: wait for a whole value
      const finish = wallMinutes(end.value);
      if (!endTouched) {
        if (finish !== null && previousStart !== null) {
          end.value = wallValue(finish + (begin - previousStart));
        } else if (finish === null) {
          endFromLength();
        }
      }
      previousStart = begin;
    }

    end.addEventListener("input", () => {
      endTouched = end.value !== "";
      endFromService = false;
    });
    start.addEventListener("input", startMoved);
    start.addEventListener("change", startMoved);
    if (service) {
      service.addEventListener("change", () => {
        if (!endTouched && (end.value === "" || endFromService)) endFromLength();
      });
    }
    if (end.value === "") endFromLength();
  }

  function wireRecurrence(form) {
    const repeat = form.querySelector("[name=repeat]");
    const details = form.querySelector(".recurrence-details");
    if (!repeat || !details) return;
    const sync = () => { details.hidden = repeat.value === ""; };
    repeat.addEventListener("change", sync);
    sync();
  }

  // A combobox (WAI-ARIA pattern, list autocomplete) over the native multiple
  // select, which stays in the form, hidden, and holds the choice.
  function wirePatientPicker(form) {
    const select = form.querySelector("select[data-patient-select]");
    if (!select) return;
    const field = select.closest(".field");
    const label = field && field.querySelector("label[for='" + select.id + "']");
    const help = document.getElementById(select.id + "_helptext");
    const limit = 50;

    const picker = document.createElement("div");
    picker.className = "picker";
    const chips = document.createElement("ul");
    chips.className = "picker-chips";
    chips.setAttribute("aria-label", "Chosen patients");
    const input = document.createElement("input");
    input.type = "text";
    input.id = select.id + "_search";
    input.className = "picker-input";
    input.autocomplete = "off";
    input.spellcheck = false;
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", select.id + "_listbox");
    if (help) input.setAttribute("aria-describedby", help.id);
    if (select.getAttribute("aria-invalid")) input.setAttribute("aria-invalid", "true");
    const listbox = document.createElement("ul");
    listbox.id = select.id + "_listbox";
    listbox.className = "picker-listbox";
    listbox.setAttribute("role", "listbox");
    listbox.setAttribute("aria-label", "Matching patients");
    listbox.hidden = true;
    const status = document.createElement("p");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");

    picker.append(chips, input, listbox, status);
    select.parentNode.insertBefore(picker, select);
    select.hidden = true;
    select.setAttribute("aria-hidden", "true");
    select.tabIndex = -1;
    if (label) label.htmlFor = input.id;
    if (help && select.dataset.pickerHelp) help.textContent = select.dataset.pickerHelp;

    let matches = [];
    let active = -1;

    function say(message) {
      status.textContent = message;
    }

    function chosenCount() {
      return Array.from(select.options).filter((option) => option.selected).length;
    }

    function renderChips() {
      chips.replaceChildren();
      Array.from(select.options).forEach((option) => {
        if (!option.selected) return;
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "chip";
        button.dataset.value = option.value;
        button.setAttribute("aria-label", "Remove " + option.textContent);
        const name = document.createElement("span");
        name.textContent = option.textContent;
        const cross = document.createElement("span");
        cross.setAttribute("aria-hidden", "true");
        cross.className = "chip-cross";
        cross.textContent = "×";
        button.append(name, cross);
        button.addEventListener("click", () => {
          remove(option);
          input.focus();
        });
        item.append(button);
        chips.append(item);
      });
      chips.hidden = chosenCount() === 0;
    }

    function setActive(index) {
      const options = listbox.querySelectorAll("[role=option]");
      options.forEach((element, position) => {
        element.classList.toggle("is-active", position === index);
      });
      active = index;
      if (index >= 0 && options[index]) {
        input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function close() {
      listbox.hidden = true;
      input.setAttribute("aria-expanded", "false");
      setActive(-1);
    }

    function open() {
      const words = fold(input.value).split(/\s+/).filter(Boolean);
      matches = Array.from(select.options).filter(
        (option) => !option.selected && option.value !== "" &&
          words.every((word) => fold(option.textContent).includes(word))
      );
      const total = matches.length;
      matches = matches.slice(0, limit);
      listbox.replaceChildren();
      matches.forEach((option, position) => {
        const item = document.createElement("li");
        item.id = select.id + "_option_" + option.value;
        item.setAttribute("role", "option");
        item.setAttribute("aria-selected", "false");
        item.textContent = option.textContent;
        // Keep focus in the input when an option is clicked.
        item.addEventListener("mousedown", (event) => event.preventDefault());
        item.addEventListener("click", () => choose(position));
        listbox.append(item);
      });
      if (!matches.length) {
        const empty = document.createElement("li");
        empty.className = "picker-empty";
        empty.textContent = "No patient matches “" + input.value.trim() + "”.";
        listbox.append(empty);
      } else if (total > matches.length) {
        const more = document.createElement("li");
        more.className = "picker-empty";
        more.textContent = (total - matches.length) + " more: type more of the name.";
        listbox.append(more);
      }
      listbox.hidden = false;
      input.setAttribute("aria-expanded", "true");
      setActive(matches.length && words.length ? 0 : -1);
      say(total === 1 ? "1 patient matches." : total + " patients match.");
    }

    function choose(position) {
      const option = matches[position];
      if (!option) return;
      option.selected = true;
      select.dispatchEvent(new Event("change", { bubbles: true }));
      input.value = "";
      close();
      renderChips();
      const count = chosenCount();
      say(option.textContent + " added. " + count + (count === 1 ? " patient" : " patients") + " chosen.");
    }

    function remove(option) {
      option.selected = false;
      select.dispatchEvent(new Event("change", { bubbles: true }));
      renderChips();
      const count = chosenCount();
      say(option.textContent + " removed. " + count + (count === 1 ? " patient" : " patients") + " chosen.");
    }

    input.addEventListener("input", open);
    input.addEventListener("blur", close);
    input.addEventListener("keydown", (event) => {
      const expanded = !listbox.hidden;
      switch (event.key) {
        case "ArrowDown":
          event.preventDefault();
          if (!expanded) { open(); setActive(matches.length ? 0 : -1); }
          else if (matches.length) setActive(Math.min(active + 1, matches.length - 1));
          break;
        case "ArrowUp":
          event.preventDefault();
          if (expanded && matches.length) setActive(Math.max(active - 1, 0));
          break;
        case "Enter":
          // Enter in the empty box submits the form as in any text box; with a
          // search typed it never does.
          if (expanded && active >= 0) {
            event.preventDefault();
            choose(active);
          } else if (input.value.trim() !== "") {
            event.preventDefault();
          }
          break;
        case "Escape":
          if (expanded) { event.preventDefault(); close(); }
          else if (input.value) { event.preventDefault(); input.value = ""; }
          break;
        case "Backspace":
          if (input.value === "") {
            const chosen = Array.from(select.options).filter((option) => option.selected);
            if (chosen.length) {
              event.preventDefault();
              remove(chosen[chosen.length - 1]);
            }
          }
          break;
      }
    });
    renderChips();
  }

  // After a failed save the summary of errors gets focus, so the user (and a
  // screen reader) starts from the list of what to fix; each entry moves to its field.
  function wireErrorSummary() {
    document.querySelectorAll("[data-error-summary] a[href^='#'], a[data-focus-link]").forEach((link) => {
      link.addEventListener("click", (event) => {
        const target = document.getElementById(link.getAttribute("href").slice(1));
        if (!target) return;
        const control = target.hidden
          ? document.getElementById(target.id + "_search") || target
          : target;
        event.preventDefault();
        control.scrollIntoView({ block: "center" });
        control.focus();
      });
    });
    const summary = document.querySelector("[data-error-summary]");
    if (summary) summary.focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-appointment-form]").forEach((form) => {
      wireEnd(form);
      wireRecurrence(form);
      wirePatientPicker(form);
    });
    wireErrorSummary();
  });
})();
