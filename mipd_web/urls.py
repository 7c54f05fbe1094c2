"""URL configuration: each app owns its URLs; the API lives under /api/."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from dosing.library_views import model_library

api_urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: the CSP allows no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("v1/", include("accounts.api_urls")),
    path("v1/", include("models_catalog.api_urls")),
    path("v1/", include("patients.api_urls")),
    path("v1/", include("dosing.api_urls")),
    path("v1/", include("fhir_interop.api_urls")),
]

# A path no URL matches (a malformed id) answers JSON under /api/ like every other API error.
handler404 = "mipd_web.api_errors.not_found"

urlpatterns = [
    path("", include("accounts.urls")),
    path("", include("health.urls")),
    # The library page reads patients' records, so its view lives in dosing (dosing.library_views).
    path("catalog/library/", model_library, name="model_library"),
    path("catalog/", include("models_catalog.urls")),
    path("patients/", include("patients.urls")),
    path("fhir/", include("fhir_interop.urls")),
    path("", include("dosing.urls")),
    path("audit/", include("audit.urls")),
    # CDS Hooks services and the SMART App Launch: the EHR's doors (docs/ehr-integration.md).
    path("", include("ehr_integration.urls")),
    path("performance/", include("performance.urls")),
    path("api/", include((api_urlpatterns, "api"))),
    path("admin/", admin.site.urls),
]
