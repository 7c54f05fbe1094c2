from django.urls import path

from models_catalog import views

app_name = "models_catalog"

urlpatterns = [
    path("", views.catalog_index, name="index"),
    path("versions/new/", views.version_upload, name="version_upload"),
    path("versions/<int:pk>/", views.version_detail, name="version_detail"),
    path("versions/<int:pk>/edit/", views.version_edit, name="version_edit"),
    path("versions/<int:pk>/preview/", views.version_preview, name="version_preview"),
    path("versions/<int:pk>/export/", views.version_export, name="version_export"),
    path("versions/<int:pk>/<slug:action>/", views.version_action, name="version_action"),
    path("targets/<int:pk>/", views.target_protocol_edit, name="target_edit"),
    path("drugs/<slug:drug>/targets/new/", views.target_protocol_edit, name="target_new"),
    path("drugs/<slug:name>/limits/", views.drug_limits_edit, name="drug_limits"),
    path("changes/<int:pk>/<slug:decision>/", views.change_request_decide, name="change_request_decide"),
]
