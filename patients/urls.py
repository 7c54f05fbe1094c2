from django.urls import path

from patients import views

app_name = "patients"

urlpatterns = [
    path("", views.patient_list, name="list"),
    path("new/", views.patient_new, name="new"),
    path("<uuid:pk>/", views.patient_detail, name="detail"),
    path("<uuid:pk>/record/<slug:what>/", views.patient_record, name="record"),
    path("<uuid:pk>/break-glass/", views.patient_break_glass, name="break_glass"),
    path("<uuid:pk>/sessions/<uuid:session_pk>/end/", views.session_end, name="session_end"),
    path(
        "<uuid:pk>/<slug:kind>s/<uuid:entry_pk>/entered-in-error/",
        views.patient_entry_error,
        name="entry_error",
    ),
]
