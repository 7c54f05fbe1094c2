from django.contrib import admin

from health.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "processed_at", "worker_hostname")
    readonly_fields = ("created_at", "processed_at", "worker_hostname")
