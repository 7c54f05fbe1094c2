from django.urls import path

from dosing import apis

urlpatterns = [
    path("courses/", apis.CourseListApi.as_view(), name="courses"),
    path("courses/<int:pk>/", apis.CourseDetailApi.as_view(), name="course"),
    path("courses/<int:pk>/doses/", apis.DoseListApi.as_view(), name="course-doses"),
    path("courses/<int:pk>/levels/", apis.LevelListApi.as_view(), name="course-levels"),
    path("courses/<int:pk>/updates/", apis.UpdateListApi.as_view(), name="course-updates"),
    path("courses/<int:pk>/what-if/", apis.WhatIfApi.as_view(), name="course-what-if"),
    path(
        "courses/<int:pk>/recommendations/",
        apis.RecommendationListApi.as_view(),
        name="course-recommendations",
    ),
    path("levels/<int:pk>/exclude/", apis.LevelExcludeApi.as_view(), name="level-exclude"),
    path("levels/<int:pk>/confirm/", apis.LevelConfirmApi.as_view(), name="level-confirm"),
    path(
        "recommendations/<int:pk>/review/",
        apis.RecommendationReviewApi.as_view(),
        name="recommendation-review",
    ),
    path("levels/<int:pk>/entered-in-error/", apis.LevelInErrorApi.as_view(), name="level-entered-in-error"),
    path("doses/<int:pk>/entered-in-error/", apis.DoseInErrorApi.as_view(), name="dose-entered-in-error"),
    path("updates/<int:pk>/", apis.UpdateDetailApi.as_view(), name="update"),
    path(
        "recommendations/<int:pk>/preview-change/",
        apis.ModificationPreviewApi.as_view(),
        name="recommendation-preview-change",
    ),
]
