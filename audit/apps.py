from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from django.contrib.auth import signals as auth_signals
        from django.db.models import signals

        from audit import baseline, events, recorder

        # Every model: the receivers return at once for models that are not registered (audit.registry).
        signals.pre_save.connect(recorder.on_pre_save, dispatch_uid="audit.pre_save")
        signals.post_save.connect(recorder.on_post_save, dispatch_uid="audit.post_save")
        signals.pre_delete.connect(recorder.on_pre_delete, dispatch_uid="audit.pre_delete")
        signals.post_delete.connect(recorder.on_post_delete, dispatch_uid="audit.post_delete")
        signals.m2m_changed.connect(recorder.on_m2m_changed, dispatch_uid="audit.m2m_changed")
        auth_signals.user_logged_in.connect(events.on_logged_in, dispatch_uid="audit.logged_in")
        auth_signals.user_logged_out.connect(events.on_logged_out, dispatch_uid="audit.logged_out")
        auth_signals.user_login_failed.connect(events.on_login_failed, dispatch_uid="audit.login_failed")
        events.connect_task_signals()
        signals.post_migrate.connect(baseline.on_post_migrate, dispatch_uid="audit.baseline")
