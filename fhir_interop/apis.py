"""REST API of the FHIR import and export. Imports answer the report (201); exports answer FHIR JSON."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dosing import selectors as dosing_selectors
from dosing.models import Recommendation
from fhir_interop import client, export, services
from fhir_interop.models import FhirImport
from patients import access
from patients.apis import service_errors


class FhirServerUnavailable(APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = "fhir_server_unavailable"


class ImportLineSerializer(serializers.Serializer):
    resource = serializers.CharField(help_text="ResourceType/id")
    outcome = serializers.ChoiceField(choices=["imported", "unchanged", "not_imported", "changed_in_source"])
    reason = serializers.CharField(allow_blank=True)
    record = serializers.CharField(allow_blank=True, help_text="the record it became, if any")


class ImportOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    patient = serializers.UUIDField(source="patient.public_id")
    report = ImportLineSerializer(many=True)
    counts = serializers.DictField(child=serializers.IntegerField())

    class Meta:
        model = FhirImport
        fields = ("id", "patient", "channel", "source", "bundle_sha256", "counts", "report", "imported_at")


def _patient(request: Request) -> Any:
    public_id = request.query_params.get("patient")
    return access.patient_access(user=request.user, public_id=public_id) if public_id else None


class FhirJsonParser(JSONParser):
    media_type = "application/fhir+json"


class FhirJsonRenderer(JSONRenderer):
    media_type = "application/fhir+json"


class FhirServerNotConfigured(APIException):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "fhir_server_not_configured"


class BundleImportApi(APIView):
    parser_classes = (JSONParser, FhirJsonParser)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT, "application/fhir+json": OpenApiTypes.OBJECT},
        parameters=[OpenApiParameter("patient", OpenApiTypes.UUID, description="import onto this patient")],
        responses={
            201: ImportOutputSerializer,
            400: OpenApiTypes.OBJECT,
            403: OpenApiTypes.OBJECT,
            404: OpenApiTypes.OBJECT,
        },
        operation_id="fhir_import_bundle",
        examples=[
            OpenApiExample(
                "A Bundle holding the patient and a body weight",
                value={
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [
                        {
                            "fullUrl": "urn:uuid:6f1f9b7e-8a52-4c1e-9d8e-0d2f3b0e7a11",
                            "resource": {
                                "resourceType": "Patient",
                                "id": "example-patient",
                                "identifier": [
                                    {
                                        "type": {
                                            "coding": [
                                                {
                                                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                    "code": "MR",
                                                }
                                            ]
                                        },
                                        "value": "FHIR-EXAMPLE-0001",
                                    }
                                ],
                                "name": [{"family": "Example", "given": ["Fhir"]}],
                                "gender": "female",
                                "birthDate": "1970-01-01",
                            },
                        }
                    ],
                },
                request_only=True,
                media_type="application/json",
            )
        ],
        description="A FHIR R4 Bundle about one patient. Every entry gets a line in the report: imported, "
        "unchanged (imported before), not imported (with the reason) or changed in the source. 400 when the "
        "body is not a Bundle or names another patient than ?patient=.",
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationError({"bundle": ["send a FHIR Bundle as a JSON object"]})
        patient = _patient(request)
        with service_errors():
            run = services.bundle_import(
                document=dict(request.data),
                user=request.user,
                channel=FhirImport.Channel.API,
                patient=patient,
            )
        return Response(ImportOutputSerializer(run).data, status=status.HTTP_201_CREATED)


class PatientPullApi(APIView):
    @extend_schema(
        request=None,
        responses={
            201: ImportOutputSerializer,
            403: OpenApiTypes.OBJECT,
            404: OpenApiTypes.OBJECT,
            502: OpenApiTypes.OBJECT,
        },
        operation_id="fhir_pull_patient",
        description="Import the patient's record from the configured FHIR server (FHIR_SERVER_BASE_URL), "
        "found by MRN. 404 when no server is configured; 502 when it cannot be reached, refuses the request "
        "or has not exactly one such patient.",
    )
    def post(self, request: Request, pk: Any) -> Response:
        patient = access.patient_access(user=request.user, public_id=pk)
        with service_errors():
            try:
                run = services.patient_pull(patient=patient, user=request.user)
            except client.FhirServerError as exc:
                if not client.configured():
                    raise FhirServerNotConfigured(str(exc)) from None
                raise FhirServerUnavailable(str(exc)) from None
        return Response(ImportOutputSerializer(run).data, status=status.HTTP_201_CREATED)


class RecommendationExportApi(APIView):
    renderer_classes = (JSONRenderer, FhirJsonRenderer)  # errors in JSON as everywhere, the export FHIR

    @extend_schema(
        responses={
            200: OpenApiTypes.OBJECT,
            403: OpenApiTypes.OBJECT,
            404: OpenApiTypes.OBJECT,
            409: OpenApiTypes.OBJECT,
        },
        operation_id="fhir_export_recommendation",
        description="A FHIR R4 Bundle (collection) with the signed recommendation as a MedicationRequest "
        "(intent proposal), the Provenance carrying the pharmacist's signature and a DiagnosticReport "
        "with the printable report attached as PDF. 409 unless approved.",
    )
    def get(self, request: Request, pk: Any) -> Response:
        recommendation = dosing_selectors.course_child_get(Recommendation, user=request.user, public_id=pk)
        try:
            resources = [export.medication_request(recommendation), export.provenance(recommendation)]
            resources.append(export.diagnostic_report(recommendation, generated_by=request.user))
        except DjangoValidationError as exc:  # not signed: nothing to send to the record
            return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_409_CONFLICT)
        bundle = export.collection(resources, bundle_id=str(recommendation.public_id))
        return Response(bundle, content_type=FhirJsonRenderer.media_type)


class CourseExportApi(APIView):
    renderer_classes = (JSONRenderer, FhirJsonRenderer)  # errors in JSON as everywhere, the export FHIR

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
        operation_id="fhir_export_course",
        description="The course summary as a FHIR R4 collection Bundle: Patient, weight/height/creatinine "
        "Observations, MedicationAdministrations, level Observations, signed MedicationRequests with "
        "Provenance.",
    )
    def get(self, request: Request, pk: Any) -> Response:
        course = dosing_selectors.course_get(user=request.user, public_id=pk)
        return Response(export.course_bundle(course), content_type=FhirJsonRenderer.media_type)
