"""Permission checks. Coarse role checks decorate views; ``access_*`` functions check
objects and answer the same 404 for "missing" and "not yours"."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from practice.models import Role, User


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


def access_user_by_id(acting_user: User, user_id: int) -> User:
    """A user of the acting administrator's practice, or 404."""
    if not acting_user.has_role(Role.ADMINISTRATOR):
        raise Http404
    try:
        return User.objects.get(pk=user_id, practice_id=acting_user.practice_id)
    except User.DoesNotExist:
        raise Http404 from None
