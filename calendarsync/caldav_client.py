"""A small CalDAV client (RFC 4791) over ``calendarsync.outbound``: discovery
(RFC 6764), Tend's own calendar, and one resource per appointment.

It only ever writes inside the one calendar it is given, and only with the
server's ETags (``If-None-Match: *`` to create, ``If-Match`` to replace or
delete). XML from the server is parsed with defusedxml.

``CalDAVError.message`` is written to follow "Failing since 10:42: ".
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit
from xml.etree.ElementTree import Element  # noqa: S405 - building, never parsing
from xml.sax.saxutils import escape

from defusedxml import ElementTree

from calendarsync import outbound

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CALSERVER = "http://calendarserver.org/ns/"
XML_TYPE = 'application/xml; charset="utf-8"'
ICAL_TYPE = "text/calendar; charset=utf-8"


class CalDAVError(Exception):
    """A request the server did not carry out.

    ``kind``: ``auth`` (401/403: the password is refused), ``full`` (507),
    ``not_found``, ``conflict`` (412: the resource changed on the server),
    ``server`` (5xx), ``network`` (no answer), ``refused`` (against Tend's
    outbound rules), ``protocol`` (an answer Tend cannot use)."""

    def __init__(self, kind: str, message: str, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status

    @property
    def needs_attention(self) -> bool:
        """Only the user can fix it: retrying will not help."""
        return self.kind in ("auth", "full", "refused")


AUTH_REFUSED = "the server refused the password — enter a new app password"
ACCOUNT_FULL = "the calendar account is full"
NOT_FOUND = "the calendar is no longer on the server"
SERVER_ERROR = "the calendar server answered with an error ({status})"
UNEXPECTED = "the calendar server gave an answer Tend did not expect ({status})"
NOT_CALDAV = "no CalDAV calendars were found at that address"


def _error_for(status: int) -> CalDAVError:
    if status in (401, 403):
        return CalDAVError("auth", AUTH_REFUSED, status)
    if status == 507:
        return CalDAVError("full", ACCOUNT_FULL, status)
    if status in (404, 410):
        return CalDAVError("not_found", NOT_FOUND, status)
    if status == 412:
        return CalDAVError("conflict", "the event changed on the server", status)
    if status >= 500:
        return CalDAVError("server", SERVER_ERROR.format(status=status), status)
    return CalDAVError("protocol", UNEXPECTED.format(status=status), status)


@dataclass(frozen=True)
class CalendarInfo:
    """One collection in the calendar home."""

    url: str
    name: str
    components: tuple[str, ...]  # VEVENT, VTODO… (empty: not said, so any)
    ctag: str
    sync_token: str

    @property
    def takes_events(self) -> bool:
        return not self.components or "VEVENT" in self.components


@dataclass(frozen=True)
class Discovery:
    principal_url: str
    home_url: str
    calendars: tuple[CalendarInfo, ...]


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _propfind_body(*props: tuple[str, str]) -> bytes:
    prefixes = {DAV: "d", CALDAV: "c", CALSERVER: "cs"}
    inner = "".join(f"<{prefixes[ns]}:{name}/>" for ns, name in props)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<d:propfind xmlns:d="{DAV}" xmlns:c="{CALDAV}" xmlns:cs="{CALSERVER}">'
        f"<d:prop>{inner}</d:prop></d:propfind>"
    ).encode()


def same_resource(a: str, b: str) -> bool:
    """Whether two URLs name the same resource (hosts alike, paths unquoted)."""
    first, second = urlsplit(a), urlsplit(b)
    return (first.hostname, first.port) == (second.hostname, second.port) and (
        unquote(first.path).rstrip("/") == unquote(second.path).rstrip("/")
    )


class CalDAVClient:
    """Requests to one account. ``password`` is sent as HTTP Basic (or a bearer
    token when ``auth_kind`` is ``bearer``) and never kept anywhere else."""

    def __init__(
        self,
        *,
        url: str,
        username: str,
        password: str,
        auth_kind: str = "password",
        session: outbound.Session | None = None,
    ):
        self.url = url
        self.session = session or outbound.Session()
        if auth_kind == "bearer":
            self._authorization = f"Bearer {password}"
        else:
            pair = f"{username}:{password}".encode()
            self._authorization = "Basic " + base64.b64encode(pair).decode("ascii")

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> CalDAVClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- HTTP ----------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> outbound.Response:
        try:
            return self.session.request(
                method,
                url,
                body=body,
                headers={"User-Agent": "Tend calendar push", **(headers or {})},
                authorization=self._authorization,
            )
        except outbound.OutboundError as error:
            kind = "refused" if error.kind == "refused" else "network"
            message = error.message[0].lower() + error.message[1:].rstrip(".")
            raise CalDAVError(kind, message) from None

    def _multistatus(
        self, method: str, url: str, body: bytes, depth: str
    ) -> list[tuple[str, dict[str, Element]]]:
        """(absolute href, {property: element}) of every response with a 200
        propstat."""
        response = self._request(
            method,
            url,
            body=body,
            headers={"Depth": depth, "Content-Type": XML_TYPE},
        )
        if response.status != 207:
            raise _error_for(response.status)
        try:
            root = ElementTree.fromstring(response.body)
        except ElementTree.ParseError:
            raise CalDAVError("protocol", UNEXPECTED.format(status=207)) from None
        found = []
        for item in root.iter(_q(DAV, "response")):
            href = item.findtext(_q(DAV, "href"))
            if not href:
                continue
            props: dict[str, Element] = {}
            for propstat in item.iter(_q(DAV, "propstat")):
                status = propstat.findtext(_q(DAV, "status")) or ""
                if " 200 " not in f"{status} ":
                    continue
                for prop in propstat.iter(_q(DAV, "prop")):
                    for child in prop:
                        props[child.tag] = child
            found.append((urljoin(response.url, href.strip()), props))
        return found

    def _href_prop(self, url: str, namespace: str, name: str) -> str | None:
        for href, props in self._multistatus(
            "PROPFIND", url, _propfind_body((namespace, name)), "0"
        ):
            element = props.get(_q(namespace, name))
            if element is not None:
                target = element.findtext(_q(DAV, "href"))
                if target:
                    return urljoin(href, target.strip())
        return None

    # -- discovery -----------------------------------------------------------------

    def principal(self) -> str:
        """The account's principal URL: asked of the address given, then of its
        ``/.well-known/caldav`` (RFC 6764 section 5)."""
        parts = urlsplit(self.url)
        well_known = f"{parts.scheme}://{parts.netloc}/.well-known/caldav"
        candidates = [self.url, well_known]
        if parts.path in ("", "/"):
            candidates.reverse()
        last: CalDAVError | None = None
        for candidate in candidates:
            try:
                found = self._href_prop(candidate, DAV, "current-user-principal")
            except CalDAVError as error:
                if error.kind in ("auth", "refused", "network", "full"):
                    raise
                last = error
                continue
            if found:
                return found
        raise CalDAVError("protocol", NOT_CALDAV, last.status if last else None)

    def home(self, principal_url: str) -> str:
        found = self._href_prop(principal_url, CALDAV, "calendar-home-set")
        if not found:
            raise CalDAVError("protocol", NOT_CALDAV)
        return found

    def calendars(self, home_url: str) -> list[CalendarInfo]:
        """The calendar collections in the home (Depth 1)."""
        body = _propfind_body(
            (DAV, "displayname"),
            (DAV, "resourcetype"),
            (CALDAV, "supported-calendar-component-set"),
            (CALSERVER, "getctag"),
            (DAV, "sync-token"),
        )
        found = []
        for href, props in self._multistatus("PROPFIND", home_url, body, "1"):
            kind = props.get(_q(DAV, "resourcetype"))
            if kind is None or kind.find(_q(CALDAV, "calendar")) is None:
                continue
            components = props.get(_q(CALDAV, "supported-calendar-component-set"))
            names = (
                tuple(
                    comp.get("name", "").upper()
                    for comp in components.iter(_q(CALDAV, "comp"))
                )
                if components is not None
                else ()
            )

            def text(name: str, namespace: str = DAV, props=props) -> str:
                element = props.get(_q(namespace, name))
                return (element.text or "").strip() if element is not None else ""

            found.append(
                CalendarInfo(
                    url=href,
                    name=text("displayname"),
                    components=names,
                    ctag=text("getctag", CALSERVER),
                    sync_token=text("sync-token"),
                )
            )
        return found

    def discover(self) -> Discovery:
        principal = self.principal()
        home = self.home(principal)
        return Discovery(principal, home, tuple(self.calendars(home)))

    def make_calendar(self, home_url: str, name: str) -> str:
        """Create a calendar for events named ``name`` in the home; its URL."""
        url = urljoin(home_url if home_url.endswith("/") else home_url + "/", "")
        url = f"{url}tend-{uuid.uuid4().hex}/"
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<c:mkcalendar xmlns:d="{DAV}" xmlns:c="{CALDAV}"><d:set><d:prop>'
            f"<d:displayname>{escape(name)}</d:displayname>"
            '<c:supported-calendar-component-set><c:comp name="VEVENT"/>'
            "</c:supported-calendar-component-set>"
            "</d:prop></d:set></c:mkcalendar>"
        ).encode()
        response = self._request(
            "MKCALENDAR", url, body=body, headers={"Content-Type": XML_TYPE}
        )
        if response.status not in (200, 201):
            raise _error_for(response.status)
        return url

    def delete_calendar(self, calendar_url: str) -> None:
        response = self._request("DELETE", calendar_url)
        if response.status not in (200, 204, 404, 410):
            raise _error_for(response.status)

    # -- resources -----------------------------------------------------------------

    def collection_tag(self, calendar_url: str) -> str:
        """The calendar's sync-token, else its ctag: it changes whenever anything
        in the calendar does ("" when the server offers neither)."""
        body = _propfind_body((DAV, "sync-token"), (CALSERVER, "getctag"))
        for _href, props in self._multistatus("PROPFIND", calendar_url, body, "0"):
            for namespace, name in ((DAV, "sync-token"), (CALSERVER, "getctag")):
                element = props.get(_q(namespace, name))
                if element is not None and (element.text or "").strip():
                    return (element.text or "").strip()
        return ""

    def resources(self, calendar_url: str) -> dict[str, str]:
        """{absolute href: ETag} of every resource in the calendar (Depth 1)."""
        found = {}
        for href, props in self._multistatus(
            "PROPFIND",
            calendar_url,
            _propfind_body((DAV, "getetag"), (DAV, "resourcetype")),
            "1",
        ):
            if same_resource(href, calendar_url):
                continue
            kind = props.get(_q(DAV, "resourcetype"))
            if kind is not None and kind.find(_q(DAV, "collection")) is not None:
                continue
            etag = props.get(_q(DAV, "getetag"))
            found[href] = (etag.text or "").strip() if etag is not None else ""
        return found

    def get(self, url: str) -> tuple[bytes, str]:
        response = self._request("GET", url)
        if response.status != 200:
            raise _error_for(response.status)
        return response.body, response.header("etag")

    def put(self, url: str, body: bytes, *, etag: str | None) -> str:
        """Create (``etag`` None: only if absent) or replace (only if the server
        still has ``etag``) the resource; the new ETag ("" when not given)."""
        headers = {"Content-Type": ICAL_TYPE}
        if etag is None:
            headers["If-None-Match"] = "*"
        else:
            headers["If-Match"] = etag
        response = self._request("PUT", url, body=body, headers=headers)
        if response.status not in (200, 201, 204):
            raise _error_for(response.status)
        return response.header("etag")

    def delete(self, url: str, *, etag: str | None) -> None:
        """Delete the resource (only if the server still has ``etag``, if
        given); one already gone is fine."""
        headers = {"If-Match": etag} if etag else {}
        response = self._request("DELETE", url, headers=headers)
        if response.status not in (200, 204, 404, 410):
            raise _error_for(response.status)

    # -- reading (busy time) ---------------------------------------------------------

    def calendar_query(self, calendar_url: str, start: str, end: str) -> list[bytes]:
        """The iCalendar data of every event of the calendar that overlaps
        ``start``..``end`` (UTC, ``20261129T000000Z``), recurring ones whole (REPORT
        calendar-query, RFC 4791 section 7.8). Reads only."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<c:calendar-query xmlns:d="{DAV}" xmlns:c="{CALDAV}">'
            "<d:prop><d:getetag/><c:calendar-data/></d:prop>"
            '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
            f'<c:time-range start="{escape(start)}" end="{escape(end)}"/>'
            "</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"
        ).encode()
        found = []
        for _href, props in self._multistatus("REPORT", calendar_url, body, "1"):
            data = props.get(_q(CALDAV, "calendar-data"))
            if data is not None and data.text:
                found.append(data.text.encode())
        return found
