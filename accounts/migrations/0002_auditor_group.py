"""The auditor role's group (read-only access to the audit trail and its verification)."""

from django.db import migrations


def create_auditor_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="auditor")


def delete_auditor_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="auditor").delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_role_groups")]

    operations = [migrations.RunPython(create_auditor_group, delete_auditor_group)]
