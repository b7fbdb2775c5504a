from django.http import Http404
from django.shortcuts import render

from practice.permissions import practice_user_required, role_required
from practice.models import Role


@practice_user_required
def sync(request):
    return render(request, "calendarsync/placeholder.html", {"section": "sync"})


@role_required(Role.ADMINISTRATOR)
def admin(request):
    return render(request, "calendarsync/placeholder.html", {"section": "sync_admin"})


def feed(request, token):
    raise Http404
