from django.urls import path

from patients import views

app_name = "patients"

urlpatterns = [
    path("", views.patient_list, name="list"),
    path("new/", views.patient_new, name="new"),
    path("<int:pk>/", views.patient_detail, name="detail"),
    path("<int:pk>/record/<slug:what>/", views.patient_record, name="record"),
    path("<int:pk>/sessions/<int:session_pk>/end/", views.session_end, name="session_end"),
    path(
        "<int:pk>/<slug:kind>s/<int:entry_pk>/entered-in-error/",
        views.patient_entry_error,
        name="entry_error",
    ),
]
