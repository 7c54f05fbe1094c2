from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "patients"
    verbose_name = "Patients"

    def ready(self) -> None:
        from audit.registry import register
        from patients.models import (
            BreakGlassAccess,
            CareTeam,
            ConsentRecord,
            CovariateMeasurement,
            Genotype,
            Patient,
            SupportSession,
        )

        # Every write to the patient record and to who may see it leaves an audit entry (audit.registry).
        register(Patient, patient="public_id")
        register(CovariateMeasurement, patient="patient__public_id")
        register(Genotype, patient="patient__public_id")
        register(ConsentRecord, patient="patient__public_id")
        register(BreakGlassAccess, patient="patient__public_id")
        register(SupportSession, patient="patient__public_id")
        register(CareTeam)
        register(CareTeam.members.through)
        register(CareTeam.patients.through, patient="patient__public_id")
