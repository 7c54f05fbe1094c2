"""Random public ids for the existing courses, doses, levels, updates and recommendations."""

import uuid

from django.db import migrations

MODELS = ("TherapyCourse", "DoseAdministration", "DrugLevel", "BayesianUpdate", "Recommendation")


def populate(apps, schema_editor):
    db = schema_editor.connection.alias
    for name in MODELS:
        model = apps.get_model("dosing", name)
        for pk in model.objects.using(db).filter(public_id__isnull=True).values_list("pk", flat=True):
            model.objects.using(db).filter(pk=pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("dosing", "0004_public_ids_step1")]

    operations = [migrations.RunPython(populate, migrations.RunPython.noop)]
