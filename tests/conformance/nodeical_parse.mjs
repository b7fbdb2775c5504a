// Read an iCalendar stream on stdin with node-ical (the parser inside MagicMirror,
// Node-RED and many Node.js dashboards) and print what it saw as JSON: every VEVENT
// with UTC instants, plus errors and warnings.
// node-ical gives each DTSTART/DTEND as a JavaScript Date (an absolute instant) with the
// zone it resolved in `.tz`; all-day values carry `.dateOnly` and are built in the
// process's local zone, so they are read back with local getters. A TZID node-ical could
// not resolve leaves the wall time in the process's zone, which is reported.
import ical from "node-ical";

const errors = [];
const warnings = [];
for (const level of ["warn", "error"]) {
  console[level] = (...args) => warnings.push(`console.${level}: ${args.join(" ")}`);
}

function pad(number, width = 2) {
  return String(number).padStart(width, "0");
}

function localDate(date) {
  return `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function instant(date, uid, what) {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    warnings.push(`${uid}: no ${what}`);
    return null;
  }
  if (date.dateOnly) return localDate(date);
  if (!date.tz) {
    // Floating: the wall time as written, with no zone.
    return (
      `${localDate(date)}T${pad(date.getHours())}:${pad(date.getMinutes())}` +
      `:${pad(date.getSeconds())}`
    );
  }
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function text(value) {
  if (value === undefined || value === null) return null;
  if (typeof value === "object" && "val" in value) return String(value.val);
  return String(value);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const raw = await readStdin();
const decoded = new TextDecoder("utf-8", { fatal: false }).decode(raw);
if (decoded.includes("\uFFFD")) errors.push("stream is not valid UTF-8");
const events = [];
try {
  const parsed = ical.sync.parseICS(decoded);
  for (const item of Object.values(parsed)) {
    if (!item || item.type !== "VEVENT") continue;
    const uid = text(item.uid) ?? "";
    for (const [what, date] of [
      ["DTSTART", item.start],
      ["DTEND", item.end],
    ]) {
      if (date instanceof Date && !date.dateOnly && date.tz === undefined) {
        warnings.push(`${uid}: ${what} has no zone in node-ical; it floats`);
      }
    }
    events.push({
      uid,
      summary: text(item.summary),
      status: text(item.status) ?? "",
      start: instant(item.start, uid, "DTSTART"),
      end: instant(item.end, uid, "DTEND"),
    });
  }
} catch (error) {
  errors.push(`node-ical threw: ${error && error.message ? error.message : error}`);
}
process.stdout.write(JSON.stringify({ events, errors, warnings }));
