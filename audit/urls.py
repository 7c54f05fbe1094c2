from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.entry_list, name="entries"),
    path("export.csv", views.entry_export, name="export"),
    path("verification/", views.verification, name="verification"),
    path("verification/run/", views.verification_start, name="verification_run"),
]
