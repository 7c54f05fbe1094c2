from django.urls import path

from ehr_integration import cds_views, smart_views

app_name = "ehr"
urlpatterns = [
    path("cds-services", cds_views.discovery, name="cds_discovery"),
    path("cds-services/<slug:service_id>", cds_views.call, name="cds_call"),
    path("cds-services/<slug:service_id>/feedback", cds_views.feedback, name="cds_feedback"),
    path("smart/launch", smart_views.launch, name="smart_launch"),
    path("smart/callback", smart_views.callback, name="smart_callback"),
]
