"""Seal the versions published before seals existed (models_catalog.integrity), if their file still
matches its published hash; one that does not stays unsealed, and dosing with it is refused."""

from django.db import migrations

from models_catalog.engine_adapter import canonical_sha256
from models_catalog.integrity import seal_for


def seal_existing(apps, schema_editor):
    version_model = apps.get_model("models_catalog", "ModelVersion")
    db = schema_editor.connection.alias
    for version in version_model.objects.using(db).filter(status__in=["published", "retired"]):
        if canonical_sha256(version.document) != version.document_sha256:
            continue
        version_model.objects.using(db).filter(pk=version.pk).update(
            document_seal=seal_for(
                model_id=version.model_id, version=version.version, document_sha256=version.document_sha256
            )
        )


class Migration(migrations.Migration):
    dependencies = [("models_catalog", "0004_change_requests_and_seal")]

    operations = [migrations.RunPython(seal_existing, migrations.RunPython.noop)]
