// Small progressive enhancements; every page works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // Copy buttons: <button data-copy="#element-id">.
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const source = document.querySelector(button.dataset.copy);
      if (!source) return;
      const text = source.value !== undefined ? source.value : source.textContent;
      try {
        await navigator.clipboard.writeText(text.trim());
      } catch {
        if (source.select) { source.select(); document.execCommand("copy"); }
      }
      const label = button.textContent;
      button.textContent = "Copied";
      button.setAttribute("aria-live", "polite");
      setTimeout(() => { button.textContent = label; }, 2000);
    });
  });
  // Confirmation for dangerous actions: <form data-confirm="message">.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  // Auto-submit selects: <select data-autosubmit>.
  document.querySelectorAll("select[data-autosubmit], input[data-autosubmit]").forEach((el) => {
    el.addEventListener("change", () => el.form && el.form.submit());
  });
});

// Two-factor settings: a new passkey shows in the list (and new recovery codes
// once) after a reload.
document.addEventListener("otp_webauthn.register_complete", () => window.location.reload());
