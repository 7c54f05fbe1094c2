from django.urls import path

from performance import views

app_name = "performance"

urlpatterns = [
    path("", views.index, name="index"),
    path("versions/<int:pk>/", views.version_page, name="version"),
    path("versions/<int:pk>/refresh/", views.version_refresh, name="version_refresh"),
    path("alerts/<int:pk>/close/", views.alert_close, name="alert_close"),
]
