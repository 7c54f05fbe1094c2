from django.urls import path

from patients import apis

urlpatterns = [
    path("patients/", apis.PatientListApi.as_view(), name="patients"),
    path("patients/<uuid:pk>/", apis.PatientDetailApi.as_view(), name="patient"),
    path("patients/<uuid:pk>/measurements/", apis.MeasurementListApi.as_view(), name="patient-measurements"),
    path("patients/<uuid:pk>/genotypes/", apis.GenotypeListApi.as_view(), name="patient-genotypes"),
    path("patients/<uuid:pk>/consents/", apis.ConsentListApi.as_view(), name="patient-consents"),
    path("patients/<uuid:pk>/sessions/", apis.SupportSessionListApi.as_view(), name="patient-sessions"),
    path("sessions/<uuid:pk>/end/", apis.SupportSessionEndApi.as_view(), name="session-end"),
    path(
        "sessions/<uuid:pk>/entered-in-error/",
        apis.SupportSessionInErrorApi.as_view(),
        name="session-entered-in-error",
    ),
    path(
        "measurements/<uuid:pk>/entered-in-error/",
        apis.MeasurementInErrorApi.as_view(),
        name="measurement-entered-in-error",
    ),
    path(
        "genotypes/<uuid:pk>/entered-in-error/",
        apis.GenotypeInErrorApi.as_view(),
        name="genotype-entered-in-error",
    ),
]
