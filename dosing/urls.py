from django.urls import path

from dosing import strategy_views, views

app_name = "dosing"

urlpatterns = [
    path("patients/<uuid:patient_pk>/courses/new/", views.course_open, name="course_open"),
    path("courses/<uuid:pk>/", views.course_detail, name="course"),
    path("courses/<uuid:pk>/status.json", views.course_status, name="course_status"),
    path("courses/<uuid:pk>/results/", views.course_results_panel, name="course_results"),
    path("courses/<uuid:pk>/record/<slug:what>/", views.course_record, name="course_record"),
    path("courses/<uuid:pk>/levels/<uuid:level_pk>/exclude/", views.level_exclude, name="level_exclude"),
    path("courses/<uuid:pk>/levels/<uuid:level_pk>/confirm/", views.level_confirm, name="level_confirm"),
    path("courses/<uuid:pk>/what-if/", views.course_what_if, name="what_if"),
    path("courses/<uuid:pk>/monitoring-series/", views.series_import, name="series_import"),
    path(
        "courses/<uuid:pk>/<slug:kind>s/<uuid:entry_pk>/entered-in-error/",
        views.course_entry_error,
        name="entry_error",
    ),
    path("review/", views.review_queue, name="review_queue"),
    path("drugs/<slug:name>/models/", strategy_views.drug_strategy_edit, name="drug_strategy"),
    path(
        "courses/<uuid:pk>/recommendations/<uuid:rec_pk>/review/",
        views.recommendation_review,
        name="recommendation_review",
    ),
    path(
        "courses/<uuid:pk>/recommendations/<uuid:rec_pk>/report.pdf",
        views.recommendation_report,
        name="recommendation_report",
    ),
]
