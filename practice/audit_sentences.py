"""The audit log in words: one sentence per event, from its kind, who acted and
whom it concerned ("Dana Rivera reset their calendar links", "Sam Lee added Kim
Park as clinician"). The details stay on the page, behind a disclosure."""

from practice.models import AuditEvent, Role

Kind = AuditEvent.Kind

# Each kind: the sentence when the event concerns nobody else (no target, or the
# actor themself), and the one when it concerns someone else. ``{actor}`` is who
# acted (or, for events nobody signed in caused, the account concerned);
# ``{target}`` the other person.
SENTENCES: dict[str, tuple[str, str]] = {
    Kind.LOGIN: ("{actor} signed in", "{actor} signed in"),
    Kind.LOGIN_FAILED: (
        "{actor} failed to sign in",
        "Someone failed to sign in as {target}",
    ),
    Kind.LOCKOUT: (
        "{actor} was locked out after failed sign-ins",
        "Sign-in as {target} was locked after failed attempts",
    ),
    Kind.LOGOUT: ("{actor} signed out", "{actor} signed out"),
    Kind.NETWORK_BLOCKED: (
        "{actor} was refused outside the allowed networks",
        "{target} was refused outside the allowed networks",
    ),
    Kind.PASSWORD_CHANGED: (
        "{actor} changed their password",
        "{actor} changed the password of {target}",
    ),
    Kind.PASSWORD_RESET_REQUESTED: (
        "{actor} asked for a password reset",
        "A password reset was asked for {target}",
    ),
    Kind.USER_CREATED: ("{actor} added a user{roles}", "{actor} added {target}{roles}"),
    Kind.ROLE_CHANGED: (
        "{actor} changed their roles{roles}",
        "{actor} changed the roles of {target}{roles}",
    ),
    Kind.USER_DEACTIVATED: (
        "{actor} deactivated their account",
        "{actor} deactivated {target}",
    ),
    Kind.USER_REACTIVATED: (
        "{actor} reactivated their account",
        "{actor} reactivated {target}",
    ),
    Kind.PRACTICE_CHANGED: (
        "{actor} changed the practice settings",
        "{actor} changed the practice settings",
    ),
    Kind.NETWORKS_CHANGED: (
        "{actor} changed the network restrictions",
        "{actor} changed the network restrictions",
    ),
    Kind.SYNC_RESET: (
        "{actor} reset their calendar links",
        "{actor} reset the calendar links of {target}",
    ),
    Kind.SYNC_DISABLED: (
        "{actor} turned calendar sync off for themself",
        "{actor} turned calendar sync off for {target}",
    ),
    Kind.SYNC_ENABLED: (
        "{actor} turned calendar sync on for themself",
        "{actor} turned calendar sync on for {target}",
    ),
    Kind.SYNC_PRACTICE_OFF: (
        "{actor} switched calendar sync off for the practice",
        "{actor} switched calendar sync off for the practice",
    ),
    Kind.SYNC_PRACTICE_ON: (
        "{actor} switched calendar sync on for the practice",
        "{actor} switched calendar sync on for the practice",
    ),
    Kind.SYNC_LINK_EMAILED: (
        "{actor} emailed themself a calendar link",
        "{actor} emailed a calendar link to {target}",
    ),
    Kind.FEED_FETCHED: (
        "A calendar app fetched a calendar link of {actor}",
        "A calendar app fetched a calendar link of {target}",
    ),
    Kind.PATIENT_VIEWED: ("{actor} viewed a patient", "{actor} viewed a patient"),
    Kind.PATIENT_LIST_VIEWED: (
        "{actor} viewed the patient list",
        "{actor} viewed the patient list",
    ),
    Kind.APPOINTMENT_VIEWED: (
        "{actor} viewed an appointment",
        "{actor} viewed an appointment",
    ),
    Kind.CALENDAR_VIEWED: (
        "{actor} viewed their calendar",
        "{actor} viewed the calendar of {target}",
    ),
    Kind.PATIENT_CREATED: ("{actor} added a patient", "{actor} added a patient"),
    Kind.PATIENT_CHANGED: (
        "{actor} changed a patient's details",
        "{actor} changed a patient's details",
    ),
    Kind.PATIENT_DEACTIVATED: (
        "{actor} deactivated a patient",
        "{actor} deactivated a patient",
    ),
    Kind.PATIENT_REACTIVATED: (
        "{actor} reactivated a patient",
        "{actor} reactivated a patient",
    ),
    Kind.OPERATOR_VIEWED: (
        "{actor} (installation operator) viewed practice data",
        "{actor} (installation operator) viewed practice data about {target}",
    ),
    Kind.OPERATOR_CHANGED: (
        "{actor} (installation operator) changed practice data",
        "{actor} (installation operator) changed practice data about {target}",
    ),
    Kind.AUDIT_EXPORTED: (
        "{actor} exported the audit log",
        "{actor} exported the audit log",
    ),
    Kind.SIGNED_OUT_EVERYWHERE: (
        "{actor} signed out everywhere",
        "{actor} signed {target} out everywhere",
    ),
    Kind.TWO_FACTOR_PASSED: (
        "{actor} passed the second sign-in step",
        "{target} passed the second sign-in step",
    ),
    Kind.TWO_FACTOR_FAILED: (
        "{actor} entered a wrong two-factor code",
        "A wrong two-factor code was entered for {target}",
    ),
    Kind.TWO_FACTOR_LOCKOUT: (
        "{actor} was locked out of the second step after wrong codes",
        "The second step of {target} was locked after wrong codes",
    ),
    Kind.TWO_FACTOR_ADDED: (
        "{actor} added a two-factor method",
        "{actor} added a two-factor method for {target}",
    ),
    Kind.TWO_FACTOR_REMOVED: (
        "{actor} removed a two-factor method",
        "{actor} turned two-factor sign-in off for {target}",
    ),
    Kind.RECOVERY_CODES_ISSUED: (
        "{actor} got new recovery codes",
        "{actor} issued new recovery codes for {target}",
    ),
    Kind.REAUTHENTICATED: (
        "{actor} confirmed their identity",
        "{actor} confirmed their identity",
    ),
    Kind.CALENDAR_CONNECTED: (
        "{actor} connected a calendar account",
        "{actor} connected a calendar account for {target}",
    ),
    Kind.CALENDAR_DISCONNECTED: (
        "{actor} removed a calendar account",
        "{actor} removed a calendar account of {target}",
    ),
    Kind.CALENDAR_FAILING: (
        "The calendar account of {actor} stopped working",
        "The calendar account of {target} stopped working",
    ),
    Kind.CALENDAR_RECOVERED: (
        "The calendar account of {actor} works again",
        "The calendar account of {target} works again",
    ),
    Kind.CALENDAR_PASSWORD_REPLACED: (
        "{actor} replaced the app password of their calendar account",
        "{actor} replaced the app password of the calendar account of {target}",
    ),
    Kind.CALENDAR_RESUMED: (
        "{actor} resumed sending to their calendar account",
        "{actor} resumed sending to the calendar account of {target}",
    ),
    Kind.BUSY_LINK_ON: (
        "{actor} made a busy-only calendar link",
        "{actor} made a busy-only calendar link for {target}",
    ),
    Kind.BUSY_LINK_RESET: (
        "{actor} reset their busy-only calendar link",
        "{actor} reset the busy-only calendar link of {target}",
    ),
    Kind.BUSY_LINK_OFF: (
        "{actor} turned their busy-only calendar link off",
        "{actor} turned the busy-only calendar link of {target} off",
    ),
}

# Kinds whose target is what was acted on, when nobody signed in acted (the
# operator's setup commands, the demo loader): the sentence is passive.
WITHOUT_ACTOR: dict[str, str] = {
    Kind.USER_CREATED: "{target} was added{roles}",
    Kind.ROLE_CHANGED: "The roles of {target} were changed{roles}",
    Kind.USER_DEACTIVATED: "{target} was deactivated",
    Kind.USER_REACTIVATED: "{target} was reactivated",
    Kind.SYNC_RESET: "The calendar links of {target} were reset",
    Kind.SYNC_DISABLED: "Calendar sync was turned off for {target}",
    Kind.SYNC_ENABLED: "Calendar sync was turned on for {target}",
    Kind.SIGNED_OUT_EVERYWHERE: "{target} was signed out everywhere",
    Kind.TWO_FACTOR_REMOVED: "Two-factor sign-in was turned off for {target}",
}

ROLE_NAMES = {
    Role.ADMINISTRATOR: "administrator",
    Role.SCHEDULER: "scheduler",
    Role.CLINICIAN: "clinician",
}


def _person(user) -> str:
    if user is None:
        return "Someone"
    if user.practice_id is None:
        return f"{user.label} (installation operator)"
    return user.label


def _roles_text(event: AuditEvent) -> str:
    """ " as clinician", " to scheduler and clinician": the roles an addition or a
    role change left, from the event's details (empty when none were recorded)."""
    roles = event.details.get("roles", event.details.get("after"))
    if not isinstance(roles, list):
        return ""
    names = [ROLE_NAMES.get(role, str(role)) for role in roles]
    if not names:
        return " to no role"
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f" as {listed}" if event.kind == Kind.USER_CREATED else f" to {listed}"


def audit_sentence(event: AuditEvent) -> str:
    """The event as one sentence for the audit log page, from its kind, actor,
    target user and details; an unknown kind reads as its label."""
    forms = SENTENCES.get(event.kind)
    if forms is None:
        return event.get_kind_display()
    actor, target = event.actor, event.target_user
    if actor is None and target is not None and event.kind in WITHOUT_ACTOR:
        return WITHOUT_ACTOR[event.kind].format(
            target=_person(target), roles=_roles_text(event)
        )
    if actor is None:
        # Nobody signed in caused it (a failed sign-in, a fetch): the account
        # concerned is the subject.
        actor, target = target, None
    about_other = target is not None and target.pk != getattr(actor, "pk", None)
    form = forms[1] if about_other else forms[0]
    if event.kind == Kind.OPERATOR_VIEWED or event.kind == Kind.OPERATOR_CHANGED:
        subject = actor.label if actor is not None else "Someone"
    else:
        subject = _person(actor)
    return form.format(
        actor=subject,
        target=_person(target) if about_other else "",
        roles=_roles_text(event),
    )
