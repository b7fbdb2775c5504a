from django.urls import path

from bench import views
from config.urls import urlpatterns as application

urlpatterns = [
    path("bench/b0/<str:name>.ics", views.prerendered, name="bench_b0"),
    path("bench/naive/<str:token>.ics", views.naive, name="bench_naive"),
    *application,
]
