from django.urls import path

from scheduling import views

app_name = "scheduling"

urlpatterns = [
    path("scheduling/", views.calendar, name="calendar"),
    path("patients/", views.patients, name="patients"),
]
