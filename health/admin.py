from django.contrib import admin

from health.models import BeatHeartbeat, WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "processed_at", "worker_hostname")
    readonly_fields = ("created_at", "processed_at", "worker_hostname")


@admin.register(BeatHeartbeat)
class BeatHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("id", "beat_at", "worker_hostname")
    readonly_fields = ("beat_at", "worker_hostname")
