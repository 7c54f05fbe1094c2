"""Random public ids for the existing rows, and the normalised MRN of each patient (patients.identifiers).

Two existing patients whose MRNs normalise to the same identifier stop the migration, naming both: someone
must decide which record is the real one before the database can refuse look-alikes.
"""

import unicodedata
import uuid

from django.core.exceptions import ValidationError
from django.db import migrations

from patients.identifiers import normalize_mrn

MODELS = (
    "Patient",
    "CovariateMeasurement",
    "Genotype",
    "ConsentRecord",
    "BreakGlassAccess",
    "SupportSession",
)


def populate(apps, schema_editor):
    db = schema_editor.connection.alias
    for name in MODELS:
        model = apps.get_model("patients", name)
        for pk in model.objects.using(db).filter(public_id__isnull=True).values_list("pk", flat=True):
            model.objects.using(db).filter(pk=pk).update(public_id=uuid.uuid4())
    patient_model = apps.get_model("patients", "Patient")
    seen = {}
    for pk, mrn in patient_model.objects.using(db).order_by("pk").values_list("pk", "mrn"):
        try:
            key = normalize_mrn(mrn)
        except ValidationError:  # an MRN with characters new ones may not have: kept, folded as far as safe
            key = "".join(unicodedata.normalize("NFKC", mrn).split()).upper()[:64]
        if key in seen:
            raise RuntimeError(
                f"patients {seen[key][0]} (MRN {seen[key][1]!r}) and {pk} (MRN {mrn!r}) have the same MRN once "
                "normalised: merge or correct them before migrating"
            )
        seen[key] = (pk, mrn)
        patient_model.objects.using(db).filter(pk=pk).update(mrn_key=key)


class Migration(migrations.Migration):
    dependencies = [("patients", "0003_public_ids_step1")]

    operations = [migrations.RunPython(populate, migrations.RunPython.noop)]
