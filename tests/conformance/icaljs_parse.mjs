// Read an iCalendar stream on stdin with ical.js (the parser inside Thunderbird) and print
// what it saw as JSON: every VEVENT with UTC instants, plus errors and warnings.
// Every VTIMEZONE in the stream is registered first, as Thunderbird does on import; a
// TZID that no VTIMEZONE defines leaves the time floating, which is reported.
import ICAL from "ical.js";

const errors = [];
const warnings = [];
for (const level of ["warn", "error"]) {
  console[level] = (...args) => warnings.push(`console.${level}: ${args.join(" ")}`);
}

function pad(number, width = 2) {
  return String(number).padStart(width, "0");
}

function instant(time, uid, what) {
  if (!time) {
    warnings.push(`${uid}: no ${what}`);
    return null;
  }
  const date = `${pad(time.year, 4)}-${pad(time.month)}-${pad(time.day)}`;
  if (time.isDate) return date;
  const zone = time.zone;
  if (!zone || zone.tzid === "floating") {
    return `${date}T${pad(time.hour)}:${pad(time.minute)}:${pad(time.second)}`;
  }
  const utc = time.convertToZone(ICAL.Timezone.utcTimezone);
  return (
    `${pad(utc.year, 4)}-${pad(utc.month)}-${pad(utc.day)}` +
    `T${pad(utc.hour)}:${pad(utc.minute)}:${pad(utc.second)}Z`
  );
}

function tzidProblems(component, uid) {
  for (const name of ["dtstart", "dtend"]) {
    const prop = component.getFirstProperty(name);
    const tzid = prop && prop.getParameter("tzid");
    if (!tzid) continue;
    const value = prop.getFirstValue();
    if (!value.zone || value.zone.tzid === "floating") {
      warnings.push(`${uid}: TZID ${JSON.stringify(tzid)} is unknown to ical.js; ${name} floats`);
    }
  }
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const raw = await readStdin();
const text = new TextDecoder("utf-8", { fatal: false }).decode(raw);
if (text.includes("\uFFFD")) errors.push("stream is not valid UTF-8");
const events = [];
try {
  const root = new ICAL.Component(ICAL.parse(text));
  if (root.name !== "vcalendar") errors.push(`top-level component is ${root.name}`);
  for (const zone of root.getAllSubcomponents("vtimezone")) {
    ICAL.TimezoneService.register(zone);
  }
  for (const component of root.getAllSubcomponents("vevent")) {
    const event = new ICAL.Event(component);
    const uid = event.uid ?? "";
    tzidProblems(component, uid);
    events.push({
      uid,
      summary: event.summary ?? null,
      status: component.getFirstPropertyValue("status") ?? "",
      start: instant(event.startDate, uid, "DTSTART"),
      end: instant(event.endDate, uid, "DTEND"),
    });
  }
} catch (error) {
  errors.push(`ical.js threw: ${error && error.message ? error.message : error}`);
}
process.stdout.write(JSON.stringify({ events, errors, warnings }));
