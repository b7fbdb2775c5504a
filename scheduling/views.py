from django.shortcuts import render

from practice.permissions import practice_user_required


@practice_user_required
def calendar(request):
    return render(request, "scheduling/placeholder.html", {"heading": "SCHEDULING"})


@practice_user_required
def patients(request):
    return render(request, "scheduling/placeholder.html", {"heading": "Patients"})
