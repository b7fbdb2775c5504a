"""Permission checks. Coarse role checks decorate views; ``access_*`` functions check
objects and answer the same 404 for "missing" and "not yours"."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import reverse

from practice.models import Role, User
from practice.twofactor.session import reauth_recent
from practice.twofactor.views import reauth_refused


def role_required(*roles: Role):
    """Let the view run only for a signed-in practice user holding one of ``roles``."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            user = request.user
            if user.practice_id is None or not user.has_role(*roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def practice_user_required(view):
    """Let the view run for any signed-in user who belongs to a practice."""

    @wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        if request.user.practice_id is None:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def reauth_required(*, return_to=None, when=None):
    """Let the view run only if the password or a second factor was confirmed in
    the last REAUTH_MINUTES. Otherwise a page goes through "Confirm it's you" and
    back; a posted form is refused, and is submitted again once confirmed, on
    ``return_to`` (a URL name, or a function of the view's arguments giving a
    path; the same page if not given). With ``when``, only requests for which
    ``when(request)`` is true need it."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if reauth_recent(request) or (when is not None and not when(request)):
                return view(request, *args, **kwargs)
            if return_to is None:
                back = request.path
            elif callable(return_to):
                back = return_to(*args, **kwargs)
            else:
                back = reverse(return_to)
            return reauth_refused(request, return_to=back)

        return wrapped

    return decorator


def access_user_by_id(acting_user: User, user_id: int) -> User:
    """A user of the acting administrator's practice, or 404."""
    if not acting_user.has_role(Role.ADMINISTRATOR):
        raise Http404
    try:
        return User.objects.get(pk=user_id, practice_id=acting_user.practice_id)
    except User.DoesNotExist:
        raise Http404 from None
