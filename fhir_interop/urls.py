from django.urls import path

from fhir_interop import views

app_name = "fhir_interop"

urlpatterns = [
    path("patients/<uuid:pk>/import/", views.patient_import, name="patient_import"),
]
