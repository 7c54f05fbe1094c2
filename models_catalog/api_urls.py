from django.urls import path

from models_catalog import apis

urlpatterns = [
    path("catalog/drugs/", apis.DrugListApi.as_view(), name="catalog-drugs"),
    path("catalog/target-protocols/", apis.TargetProtocolListApi.as_view(), name="catalog-target-protocols"),
    path("catalog/model-versions/", apis.ModelVersionListApi.as_view(), name="catalog-model-versions"),
    path(
        "catalog/model-versions/<int:pk>/", apis.ModelVersionDetailApi.as_view(), name="catalog-model-version"
    ),
    path(
        "catalog/model-versions/<int:pk>/<slug:action>/",
        apis.ModelVersionActionApi.as_view(),
        name="catalog-model-version-action",
    ),
    path("catalog/change-requests/", apis.ChangeRequestListApi.as_view(), name="catalog-change-requests"),
    path(
        "catalog/change-requests/<int:pk>/<slug:decision>/",
        apis.ChangeRequestDecisionApi.as_view(),
        name="catalog-change-request-decide",
    ),
]
