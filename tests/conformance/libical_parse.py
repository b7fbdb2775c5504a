"""Read an iCalendar stream on stdin with libical and print what it saw as JSON.

Runs under the system Python (/usr/bin/python3), the only one that can import libical's
GObject bindings (Debian: libical3, gir1.2-ical-3.0, python3-gi). Times are converted to
UTC with the zones the calendar itself defines; a TZID the calendar does not define is
reported, because libical then quietly uses its own zone data where other clients float.
"""

import json
import sys

import gi

gi.require_version("ICalGLib", "3.0")
from gi.repository import ICalGLib  # noqa: E402

Kind = ICalGLib.ComponentKind
PropKind = ICalGLib.PropertyKind


def children(component, kind=Kind.ANY_COMPONENT):
    child = component.get_first_component(kind)
    while child is not None:
        yield child
        child = component.get_next_component(kind)


def properties(component, kind=PropKind.ANY_PROPERTY):
    prop = component.get_first_property(kind)
    while prop is not None:
        yield prop
        prop = component.get_next_property(kind)


def walk(component):
    yield component
    for child in children(component):
        yield from walk(child)


def lic_errors(root):
    """Every X-LIC-ERROR libical's parser attached, with the component it sits in."""
    found = []
    for component in walk(root):
        for prop in properties(component, PropKind.XLICERROR_PROPERTY):
            where = (
                ICalGLib.Component.kind_to_string(component.isa())
                if component.isa()
                else "?"
            )
            found.append(f"X-LIC-ERROR in {where}: {prop.get_value().get_text()}")
    return found


def defined_tzids(root):
    return {
        zone.get_first_property(PropKind.TZID_PROPERTY).get_value_as_string()
        for zone in children(root, Kind.VTIMEZONE_COMPONENT)
        if zone.get_first_property(PropKind.TZID_PROPERTY) is not None
    }


def instant(time, warnings, what, uid):
    """ISO text: 'YYYY-MM-DD' for dates, '...Z' if absolute, no suffix if floating."""
    if time is None or time.is_null_time():
        warnings.append(f"{uid}: no {what}")
        return None
    if time.is_date():
        return f"{time.get_year():04d}-{time.get_month():02d}-{time.get_day():02d}"
    zone = time.get_timezone()
    if zone is None and not time.is_utc():
        return (
            f"{time.get_year():04d}-{time.get_month():02d}-{time.get_day():02d}T"
            f"{time.get_hour():02d}:{time.get_minute():02d}:{time.get_second():02d}"
        )
    utc = time.convert_to_zone(ICalGLib.Timezone.get_utc_timezone())
    return (
        f"{utc.get_year():04d}-{utc.get_month():02d}-{utc.get_day():02d}T"
        f"{utc.get_hour():02d}:{utc.get_minute():02d}:{utc.get_second():02d}Z"
    )


def text_of(component, kind):
    prop = component.get_first_property(kind)
    return None if prop is None else prop.get_value().get_text() or ""


def main():
    raw = sys.stdin.buffer.read()
    errors, warnings, events = [], [], []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        errors.append(f"not UTF-8: {error}")
        text = raw.decode("utf-8", errors="replace")
    ICalGLib.error_clear_errno()
    root = ICalGLib.Component.new_from_string(text)
    if root is None:
        errors.append("libical could not parse the stream")
    elif root.isa() != Kind.VCALENDAR_COMPONENT:
        errors.append(
            f"top-level component is {ICalGLib.Component.kind_to_string(root.isa())}"
        )
    else:
        errors.extend(lic_errors(root))
        zones = defined_tzids(root)
        for event in children(root, Kind.VEVENT_COMPONENT):
            uid = event.get_uid() or ""
            for kind in (PropKind.DTSTART_PROPERTY, PropKind.DTEND_PROPERTY):
                prop = event.get_first_property(kind)
                param = (
                    None
                    if prop is None
                    else prop.get_first_parameter(ICalGLib.ParameterKind.TZID_PARAMETER)
                )
                if param is not None and param.get_tzid() not in zones:
                    warnings.append(
                        f"{uid}: TZID {param.get_tzid()!r} has no VTIMEZONE"
                    )
            status_prop = event.get_first_property(PropKind.STATUS_PROPERTY)
            events.append(
                {
                    "uid": uid,
                    "summary": text_of(event, PropKind.SUMMARY_PROPERTY),
                    "status": ""
                    if status_prop is None
                    else status_prop.get_value_as_string(),
                    "start": instant(event.get_dtstart(), warnings, "DTSTART", uid),
                    "end": instant(event.get_dtend(), warnings, "DTEND", uid),
                }
            )
    errno = ICalGLib.errno_return()
    if errno != ICalGLib.ErrorEnum.NO_ERROR:
        warnings.append(f"libical errno: {ICalGLib.error_strerror(errno)}")
    json.dump({"events": events, "errors": errors, "warnings": warnings}, sys.stdout)


if __name__ == "__main__":
    main()
