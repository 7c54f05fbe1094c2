from django.urls import path

from dosing import apis

urlpatterns = [
    path("courses/", apis.CourseListApi.as_view(), name="courses"),
    path("courses/<uuid:pk>/", apis.CourseDetailApi.as_view(), name="course"),
    path("courses/<uuid:pk>/doses/", apis.DoseListApi.as_view(), name="course-doses"),
    path("courses/<uuid:pk>/levels/", apis.LevelListApi.as_view(), name="course-levels"),
    path("courses/<uuid:pk>/updates/", apis.UpdateListApi.as_view(), name="course-updates"),
    path("courses/<uuid:pk>/what-if/", apis.WhatIfApi.as_view(), name="course-what-if"),
    path(
        "courses/<uuid:pk>/recommendations/",
        apis.RecommendationListApi.as_view(),
        name="course-recommendations",
    ),
    path("levels/<uuid:pk>/exclude/", apis.LevelExcludeApi.as_view(), name="level-exclude"),
    path("levels/<uuid:pk>/entered-in-error/", apis.LevelInErrorApi.as_view(), name="level-entered-in-error"),
    path("doses/<uuid:pk>/entered-in-error/", apis.DoseInErrorApi.as_view(), name="dose-entered-in-error"),
    path("updates/<uuid:pk>/", apis.UpdateDetailApi.as_view(), name="update"),
    path("levels/<uuid:pk>/confirm/", apis.LevelConfirmApi.as_view(), name="level-confirm"),
    path(
        "recommendations/<uuid:pk>/review/",
        apis.RecommendationReviewApi.as_view(),
        name="recommendation-review",
    ),
    path(
        "recommendations/<uuid:pk>/preview-change/",
        apis.ModificationPreviewApi.as_view(),
        name="recommendation-preview-change",
    ),
]
