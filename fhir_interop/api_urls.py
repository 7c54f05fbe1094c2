from django.urls import path

from fhir_interop import apis

urlpatterns = [
    path("fhir/import/", apis.BundleImportApi.as_view(), name="fhir-import"),
    path("patients/<uuid:pk>/fhir/pull/", apis.PatientPullApi.as_view(), name="fhir-pull"),
    path(
        "recommendations/<uuid:pk>/fhir/", apis.RecommendationExportApi.as_view(), name="fhir-recommendation"
    ),
    path("courses/<uuid:pk>/fhir/", apis.CourseExportApi.as_view(), name="fhir-course"),
]
