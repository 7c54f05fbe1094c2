from django.urls import path

from patients import apis

urlpatterns = [
    path("patients/", apis.PatientListApi.as_view(), name="patients"),
    path("patients/<int:pk>/", apis.PatientDetailApi.as_view(), name="patient"),
    path("patients/<int:pk>/measurements/", apis.MeasurementListApi.as_view(), name="patient-measurements"),
    path("patients/<int:pk>/genotypes/", apis.GenotypeListApi.as_view(), name="patient-genotypes"),
    path("patients/<int:pk>/consents/", apis.ConsentListApi.as_view(), name="patient-consents"),
    path("patients/<int:pk>/sessions/", apis.SupportSessionListApi.as_view(), name="patient-sessions"),
    path("sessions/<int:pk>/end/", apis.SupportSessionEndApi.as_view(), name="session-end"),
    path(
        "sessions/<int:pk>/entered-in-error/",
        apis.SupportSessionInErrorApi.as_view(),
        name="session-entered-in-error",
    ),
    path(
        "measurements/<int:pk>/entered-in-error/",
        apis.MeasurementInErrorApi.as_view(),
        name="measurement-entered-in-error",
    ),
    path(
        "genotypes/<int:pk>/entered-in-error/",
        apis.GenotypeInErrorApi.as_view(),
        name="genotype-entered-in-error",
    ),
]
