"""REST API of the patient record: patients, covariate measurements, genotypes and consent.

Reads are for clinicians and pharmacists (``patients.selectors``); writes go through ``patients.services``,
which let only clinicians write. A service's ``ValidationError`` becomes a 400 naming the field, its
``PermissionDenied`` a 403. The two helpers here, :func:`service_errors` and :class:`ClinicalDateTimeField`,
are shared with the dosing API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.idempotency import idempotent
from patients import access, selectors, services
from patients.clock import clinical_time
from patients.models import ConsentRecord, CovariateMeasurement, Genotype, Patient, SupportSession


def drf_validation_error(exc: DjangoValidationError) -> ValidationError:
    """A service's ValidationError as DRF's, keyed by field (``non_field_errors`` for the rest)."""
    if hasattr(exc, "error_dict"):
        return ValidationError(
            {
                ("non_field_errors" if key == NON_FIELD_ERRORS else key): [
                    message for error in errors for message in error.messages
                ]
                for key, errors in exc.error_dict.items()
            }
        )
    return ValidationError({"non_field_errors": exc.messages})


class Conflict(ValidationError):
    """409: the request conflicts with what is recorded (e.g. a duplicate dose): resend it confirmed."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


@contextmanager
def service_errors() -> Iterator[None]:
    """Run a service call: its ValidationError becomes a 400 with the fields (409 for an error that asks for
    a confirmation: ``http_status = 409`` on the exception class), PermissionDenied a 403."""
    try:
        yield
    except DjangoValidationError as exc:
        error = drf_validation_error(exc)
        if getattr(exc, "http_status", 400) == status.HTTP_409_CONFLICT:
            raise Conflict(error.detail) from None
        raise error from None
    except DjangoPermissionDenied as exc:
        raise PermissionDenied(str(exc) or None) from None


class ClinicalDateTimeField(serializers.DateTimeField):
    """A clinical time: naive means the hospital's zone; UTC or the hospital's offset only.

    DRF's DateTimeField converts an aware value to the current zone before anyone sees its offset, so a
    time stamped "+09:00" would pass as the same instant in UTC. The offset is checked here, on the value
    as parsed, by the same rule the services apply (``patients.clock.clinical_time``).
    """

    def enforce_timezone(self, value: dt.datetime) -> dt.datetime:
        try:
            return clinical_time(value, field=self.field_name or "time")
        except DjangoValidationError as exc:
            raise serializers.ValidationError(
                [message for errors in exc.message_dict.values() for message in errors],
                code="foreign_time_zone",
            ) from None


@extend_schema_field({"type": "string"})
class StatusField(serializers.ChoiceField):
    """A ``status`` choice shown as a plain string in the schema, its choices in the help text.

    Several models have a ``status`` with different choices; as enums they collide by name in the schema.
    """

    def __init__(self, **kwargs: Any) -> None:
        choices = kwargs.pop("choices")
        values = ", ".join(str(value) for value, _ in choices)
        kwargs.setdefault("help_text", f"one of: {values}")
        super().__init__(choices=choices, **kwargs)


class PublicIdRelatedField(serializers.SlugRelatedField):
    """A related row by its public id (a UUID string), as every id in the API is."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(slug_field="public_id", **kwargs)

    def to_representation(self, obj: Any) -> str:
        return str(obj.public_id)


def paginated_serializer(name: str, item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The page layout of DRF's PageNumberPagination, declared for the schema."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


# Output serializers


class PatientOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True, help_text="the patient's public id")

    class Meta:
        model = Patient
        fields = ("id", "mrn", "family_name", "given_name", "birth_date", "sex", "ward", "created_at")


PatientPageSerializer = paginated_serializer("PatientPage", PatientOutputSerializer)


class MeasurementOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    patient = PublicIdRelatedField()
    recorded_by = serializers.StringRelatedField()

    class Meta:
        model = CovariateMeasurement
        fields = (
            "id",
            "patient",
            "kind",
            "value",
            "unit",
            "value_as_entered",
            "unit_as_entered",
            "measured_at",
            "recorded_by",
            "recorded_at",
            "entered_in_error",
            "error_reason",
        )


class GenotypeOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    patient = PublicIdRelatedField()
    recorded_by = serializers.StringRelatedField()

    class Meta:
        model = Genotype
        fields = (
            "id",
            "patient",
            "gene",
            "diplotype",
            "phenotype",
            "phenotype_source",
            "lab",
            "reported_on",
            "recorded_by",
            "recorded_at",
            "entered_in_error",
            "error_reason",
        )


class SupportSessionOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    patient = PublicIdRelatedField()
    recorded_by = serializers.StringRelatedField()
    end_recorded_by = serializers.StringRelatedField(allow_null=True)  # null until it is done

    class Meta:
        model = SupportSession
        fields = (
            "id",
            "patient",
            "modality",
            "started_at",
            "ended_at",
            "note",
            "recorded_by",
            "recorded_at",
            "end_recorded_by",
            "end_recorded_at",
            "entered_in_error",
            "error_reason",
        )


class ConsentOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    patient = PublicIdRelatedField()
    recorded_by = serializers.StringRelatedField()
    status = StatusField(choices=ConsentRecord.Status.choices, read_only=True)

    class Meta:
        model = ConsentRecord
        fields = ("id", "patient", "scope", "status", "note", "recorded_by", "recorded_at")


class CurrentConsentSerializer(serializers.Serializer):
    scope = serializers.CharField()
    label = serializers.CharField()
    status = serializers.CharField(help_text="granted, refused, withdrawn or 'not recorded'")
    recorded_by = serializers.CharField()
    recorded_at = serializers.DateTimeField(allow_null=True)


class DerivedValueSerializer(serializers.Serializer):
    label = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    unit = serializers.CharField()
    formula = serializers.CharField()
    notes = serializers.ListField(child=serializers.CharField())
    missing = serializers.CharField(help_text="why no value could be derived, if none")


class CourseSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    drug = serializers.CharField(source="drug.name")
    model_version = serializers.StringRelatedField()
    indication = serializers.CharField()
    status = serializers.CharField()
    opened_at = serializers.DateTimeField()


class PatientDetailOutputSerializer(PatientOutputSerializer):
    latest_measurements = MeasurementOutputSerializer(many=True)
    derived_covariates = DerivedValueSerializer(many=True)
    genotypes = GenotypeOutputSerializer(many=True)
    consents = CurrentConsentSerializer(many=True)
    courses = CourseSummarySerializer(many=True)

    class Meta(PatientOutputSerializer.Meta):
        fields = (
            *PatientOutputSerializer.Meta.fields,
            "latest_measurements",
            "derived_covariates",
            "genotypes",
            "consents",
            "courses",
        )


def _patient_detail(patient: Patient) -> dict[str, Any]:
    return {
        **PatientOutputSerializer(patient).data,
        "latest_measurements": MeasurementOutputSerializer(
            selectors.latest_measurements(patient=patient).values(), many=True
        ).data,
        "derived_covariates": DerivedValueSerializer(
            selectors.derived_covariates(patient=patient), many=True
        ).data,
        "genotypes": GenotypeOutputSerializer(
            patient.genotypes.filter(entered_in_error=False).select_related("recorded_by"), many=True
        ).data,
        "consents": CurrentConsentSerializer(
            [{"scope": scope, **item} for scope, item in selectors.consents_current(patient=patient).items()],
            many=True,
        ).data,
        "courses": CourseSummarySerializer(
            patient.courses.select_related("drug", "model_version"), many=True
        ).data,
    }


# Endpoints


class PatientListApi(APIView):
    """Patients: search by MRN, family name (prefix) or ward; clinicians register new ones."""

    class PatientCreateInputSerializer(serializers.Serializer):
        mrn = serializers.CharField(max_length=64)
        family_name = serializers.CharField(max_length=120)
        given_name = serializers.CharField(max_length=120)
        birth_date = serializers.DateField()
        sex = serializers.ChoiceField(choices=Patient.Sex.choices)
        ward = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")

    @extend_schema(
        parameters=[
            OpenApiParameter("search", str, description="MRN (exact), family name (prefix) or ward (exact)"),
            OpenApiParameter("page", int, description="page number"),
        ],
        responses=PatientPageSerializer,
        operation_id="patients_list",
    )
    def get(self, request: Request) -> Response:
        patients = selectors.patients_visible(
            user=request.user, search=request.query_params.get("search", "")
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            patients.order_by("family_name", "given_name", "pk"), request, self
        )
        return paginator.get_paginated_response(PatientOutputSerializer(page, many=True).data)

    @extend_schema(
        request=PatientCreateInputSerializer,
        responses={201: PatientDetailOutputSerializer},
        operation_id="patients_create",
        examples=[
            OpenApiExample(
                "A patient on the ICU",
                value={
                    "mrn": "MRN-20417",
                    "family_name": "Dupont",
                    "given_name": "Marie",
                    "birth_date": "1958-03-14",
                    "sex": "female",
                    "ward": "ICU",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        selectors.require_clinical_role(user=request.user)
        serializer = self.PatientCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            patient = services.patient_create(user=request.user, **serializer.validated_data)
        return Response(_patient_detail(patient), status=status.HTTP_201_CREATED)


class PatientDetailApi(APIView):
    @extend_schema(responses=PatientDetailOutputSerializer, operation_id="patients_retrieve")
    def get(self, request: Request, pk: Any) -> Response:
        patient = selectors.patient_get(user=request.user, public_id=pk)
        return Response(_patient_detail(patient))


class MeasurementListApi(APIView):
    """A patient's covariate measurements, newest first, including those entered in error."""

    class MeasurementCreateInputSerializer(serializers.Serializer):
        kind = serializers.SlugField(max_length=60, help_text="weight, height, serum_creatinine, albumin ...")
        value = serializers.FloatField()
        unit = serializers.CharField(max_length=24, allow_blank=True, help_text="e.g. kg, lb, µmol/L, mg/dL")
        measured_at = ClinicalDateTimeField(help_text="local time, or UTC / the hospital's offset")

    @extend_schema(
        responses=MeasurementOutputSerializer(many=True), operation_id="patients_measurements_list"
    )
    def get(self, request: Request, pk: Any) -> Response:
        patient = selectors.patient_get(user=request.user, public_id=pk)
        rows = patient.measurements.select_related("recorded_by").order_by("-measured_at", "-pk")
        return Response(MeasurementOutputSerializer(rows, many=True).data)

    @extend_schema(
        request=MeasurementCreateInputSerializer,
        responses={201: MeasurementOutputSerializer},
        operation_id="patients_measurements_create",
        examples=[
            OpenApiExample(
                "A weight",
                value={"kind": "weight", "value": 72.5, "unit": "kg", "measured_at": "2026-01-15T07:30:00Z"},
                request_only=True,
            )
        ],
    )
    @idempotent
    def post(self, request: Request, pk: Any) -> Response:
        patient = selectors.patient_get(user=request.user, public_id=pk)
        serializer = self.MeasurementCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            measurement = services.measurement_record(
                patient=patient, user=request.user, **serializer.validated_data
            )
        return Response(MeasurementOutputSerializer(measurement).data, status=status.HTTP_201_CREATED)


class MeasurementInErrorApi(APIView):
    """Mark a measurement entered in error: it stays in the history, struck, with the reason."""

    class MeasurementInErrorInputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(
        request=MeasurementInErrorInputSerializer,
        responses=MeasurementOutputSerializer,
        operation_id="measurements_mark_entered_in_error",
        examples=[
            OpenApiExample(
                "Another patient's weight", value={"reason": "weight of another patient"}, request_only=True
            )
        ],
    )
    def post(self, request: Request, pk: Any) -> Response:
        measurement = access.scoped_get(
            CovariateMeasurement.objects.select_related("patient"),
            user=request.user,
            public_id=pk,
            patient_of=lambda row: row.patient,
        )
        serializer = self.MeasurementInErrorInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            measurement = services.measurement_mark_in_error(
                measurement=measurement, user=request.user, **serializer.validated_data
            )
        return Response(MeasurementOutputSerializer(measurement).data)


class GenotypeListApi(APIView):
    """A patient's genotypes; the phenotype is called by the engine's guideline tables from the diplotype."""

    class GenotypeCreateInputSerializer(serializers.Serializer):
        gene = serializers.CharField(max_length=20)
        diplotype = serializers.CharField(max_length=60, help_text="e.g. *1/*3")
        lab = serializers.CharField(max_length=200)
        reported_on = serializers.DateField()

    @extend_schema(responses=GenotypeOutputSerializer(many=True), operation_id="patients_genotypes_list")
    def get(self, request: Request, pk: Any) -> Response:
        patient = selectors.patient_get(user=request.user, public_id=pk)
        return Response(
            GenotypeOutputSerializer(patient.genotypes.select_related("recorded_by"), many=True).data
        )

    @extend_schema(
        request=GenotypeCreateInputSerializer,
        responses={201: GenotypeOutputSerializer},
        operation_id="patients_genotypes_create",
        examples=[
            OpenApiExample(
                "A CYP3A5 result",
                value={
                    "gene": "CYP3A5",
                    "diplotype": "*1/*3",
                    "lab": "Central laboratory",
                    "reported_on": "2026-01-15",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request, pk: Any) -> Response:
        patient = selectors.patient_get(user=request.user, public_id=pk)
        serializer = self.GenotypeCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            genotype = services.genotype_record(
                patient=patient, user=request.user, **serializer.validated_data
            )
        return Response(GenotypeOutputSerializer(genotype).data, status=status.HTTP_201_CREATED)


class GenotypeInErrorApi(APIView):
    """Mark a genotype entered in error: kept, struck, and no longer used for dosing."""

    class GenotypeInErrorInputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(
        request=GenotypeInErrorInputSerializer,
        responses=GenotypeOutputSerializer,
        operation_id="genotypes_mark_entered_in_error",
        examples=[
            OpenApiExample(
                "Another patient's result", value={"reason": "result of another patient"}, request_only=True
            )
        ],
    )
    def post(self, request: Request, pk: Any) -> Response:
        genotype = access.scoped_get(
            Genotype.objects.select_related("patient"),
            user=request.user,
            public_id=pk,
            patient_of=lambda row: row.patient,
        )
        serializer = self.GenotypeInErrorInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            genotype = services.entry_mark_in_error(
                entry=genotype, user=request.user, **serializer.validated_data
            )
        return Response(GenotypeOutputSerializer(genotype).data)


class SupportSessionListApi(APIView):
    """A patient's dialysis, CRRT and ECMO sessions (start, end; ongoing while the end is empty)."""

    class SessionCreateInputSerializer(serializers.Serializer):
        modality = serializers.ChoiceField(choices=SupportSession.Modality.choices)
        started_at = ClinicalDateTimeField(help_text="local time, or UTC / the hospital's offset")
        ended_at = ClinicalDateTimeField(required=False, allow_null=True, default=None)
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    @extend_schema(responses=SupportSessionOutputSerializer(many=True), operation_id="patients_sessions_list")
    def get(self, request: Request, pk: Any) -> Response:
        patient = selectors.patient_get(user=request.user, public_id=pk)
        rows = patient.support_sessions.select_related("recorded_by", "end_recorded_by")
        return Response(SupportSessionOutputSerializer(rows, many=True).data)

    @extend_schema(
        request=SessionCreateInputSerializer,
        responses={201: SupportSessionOutputSerializer},
        operation_id="patients_sessions_create",
        examples=[
            OpenApiExample(
                "CRRT under way",
                value={"modality": "crrt", "started_at": "2026-01-15T08:00:00Z", "note": "CVVHDF"},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request, pk: Any) -> Response:
        patient = selectors.patient_get(user=request.user, public_id=pk)
        serializer = self.SessionCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            session = services.support_session_record(
                patient=patient, user=request.user, **serializer.validated_data
            )
        return Response(SupportSessionOutputSerializer(session).data, status=status.HTTP_201_CREATED)


def _session(request: Request, pk: Any) -> SupportSession:
    return access.scoped_get(
        SupportSession.objects.select_related("patient"),
        user=request.user,
        public_id=pk,
        patient_of=lambda row: row.patient,
    )


class SupportSessionEndApi(APIView):
    """Record the end of an ongoing session."""

    class SessionEndInputSerializer(serializers.Serializer):
        ended_at = ClinicalDateTimeField(help_text="local time, or UTC / the hospital's offset")

    @extend_schema(
        request=SessionEndInputSerializer,
        responses=SupportSessionOutputSerializer,
        operation_id="sessions_end",
        examples=[
            OpenApiExample("CRRT stopped", value={"ended_at": "2026-01-16T08:00:00Z"}, request_only=True)
        ],
    )
    def post(self, request: Request, pk: Any) -> Response:
        session = _session(request, pk)
        serializer = self.SessionEndInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            session = services.support_session_end(
                session=session, user=request.user, **serializer.validated_data
            )
        return Response(SupportSessionOutputSerializer(session).data)


class SupportSessionInErrorApi(APIView):
    """Mark a session entered in error: kept, struck, and no longer used."""

    class SessionInErrorInputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(
        request=SessionInErrorInputSerializer,
        responses=SupportSessionOutputSerializer,
        operation_id="sessions_mark_entered_in_error",
        examples=[
            OpenApiExample(
                "The wrong patient", value={"reason": "recorded on the wrong patient"}, request_only=True
            )
        ],
    )
    def post(self, request: Request, pk: Any) -> Response:
        session = _session(request, pk)
        serializer = self.SessionInErrorInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            session = services.entry_mark_in_error(
                entry=session, user=request.user, **serializer.validated_data
            )
        return Response(SupportSessionOutputSerializer(session).data)


class ConsentListApi(APIView):
    """A patient's consent records, newest first per scope; the latest per scope is the current status."""

    class ConsentCreateInputSerializer(serializers.Serializer):
        scope = serializers.ChoiceField(choices=ConsentRecord.Scope.choices)
        status = StatusField(choices=ConsentRecord.Status.choices)
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    @extend_schema(responses=ConsentOutputSerializer(many=True), operation_id="patients_consents_list")
    def get(self, request: Request, pk: Any) -> Response:
        patient = selectors.patient_get(user=request.user, public_id=pk)
        return Response(
            ConsentOutputSerializer(patient.consents.select_related("recorded_by"), many=True).data
        )

    @extend_schema(
        request=ConsentCreateInputSerializer,
        responses={201: ConsentOutputSerializer},
        operation_id="patients_consents_create",
        examples=[
            OpenApiExample(
                "Consent given",
                value={
                    "scope": "model_based_dosing",
                    "status": "granted",
                    "note": "explained to the patient",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request, pk: Any) -> Response:
        patient = selectors.patient_get(user=request.user, public_id=pk)
        serializer = self.ConsentCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            record = services.consent_record(patient=patient, user=request.user, **serializer.validated_data)
        return Response(ConsentOutputSerializer(record).data, status=status.HTTP_201_CREATED)
