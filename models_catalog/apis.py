"""REST API of the catalog: read-only for every signed-in user; curators import and move versions along."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mipd_web.engine_calls import engine_call
from mipd_web.throttles import ENGINE_RESPONSES, ENGINE_SCOPE
from models_catalog import selectors, services
from models_catalog.forms import MAX_MODEL_FILE_BYTES, split_entry
from models_catalog.library import LIBRARY_DIRECTORY
from models_catalog.models import CatalogChangeRequest, Drug, ModelVersion, TargetProtocol


def _drf_error(exc: DjangoValidationError) -> ValidationError:
    if hasattr(exc, "error_dict"):
        return ValidationError(
            {key: [m for e in errors for m in e.messages] for key, errors in exc.error_dict.items()}
        )
    return ValidationError({"non_field_errors": exc.messages})


class DrugOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Drug
        fields = ("name", *Drug.DESCRIPTION_FIELDS, *Drug.LIMIT_FIELDS)


class DrugListApi(ListAPIView):
    serializer_class = DrugOutputSerializer
    queryset = Drug.objects.all()


class TargetProtocolOutputSerializer(serializers.ModelSerializer):
    drug = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = TargetProtocol
        fields = ("id", "drug", "indication", "target", "source", "institution_note", "active", "updated_at")


class TargetProtocolListApi(ListAPIView):
    serializer_class = TargetProtocolOutputSerializer

    def get_queryset(self) -> Any:
        return selectors.target_protocols(active_only=False).order_by("drug__name", "indication")


class ModelVersionOutputSerializer(serializers.ModelSerializer):
    drug = serializers.SlugRelatedField(slug_field="name", read_only=True)
    model_card = serializers.JSONField(read_only=True)
    published_by = serializers.StringRelatedField(allow_null=True)  # null until it is done

    class Meta:
        model = ModelVersion
        fields = (
            "id",
            "drug",
            "model_id",
            "version",
            "title",
            "status",
            "document_sha256",
            "citation_text",
            "doi",
            "model_card",
            "published_by",
            "published_at",
            "retired_at",
            "retired_reason",
        )


class ModelVersionDetailOutputSerializer(ModelVersionOutputSerializer):
    document = serializers.JSONField(read_only=True)

    class Meta(ModelVersionOutputSerializer.Meta):
        fields = (
            *ModelVersionOutputSerializer.Meta.fields,
            "document",
            "reference_checks",
            "transcription",
            "covariate_sources",
        )


IMPORT_EXAMPLE = "models/vancomycin-roberts-2011.json"


class ModelVersionListApi(APIView):
    """Model versions: published and retired ones for all, every state for curators, who import by POST."""

    class ImportSerializer(serializers.Serializer):
        document = serializers.JSONField(help_text="a mipd-model/1 model file or a mipd-library/1 entry")
        version = serializers.CharField(required=False, allow_blank=True, max_length=32)

    @extend_schema(
        responses=ModelVersionOutputSerializer(many=True),
        parameters=[
            OpenApiParameter("drug", str, description="drug name"),
            OpenApiParameter("status", str, description="draft, validated, published or retired"),
        ],
        operation_id="catalog_model_versions_list",
    )
    def get(self, request: Request) -> Response:
        versions = selectors.model_versions_visible(user=request.user)
        if drug := request.query_params.get("drug"):
            versions = versions.filter(drug__name=drug)
        if state := request.query_params.get("status"):
            if state not in ModelVersion.Status.values:
                raise ValidationError({"status": [f"one of {', '.join(ModelVersion.Status.values)}"]})
            versions = versions.filter(status=state)
        return Response(ModelVersionOutputSerializer(versions, many=True).data)

    @extend_schema(
        request=ImportSerializer,
        responses={201: ModelVersionDetailOutputSerializer},
        operation_id="catalog_model_versions_import",
        examples=[
            OpenApiExample(
                "A library entry (the shipped vancomycin model)",
                value={
                    "document": json.loads((LIBRARY_DIRECTORY / IMPORT_EXAMPLE).read_text(encoding="utf-8"))
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        if not selectors.is_curator(user=request.user):
            raise PermissionDenied("model curators only")
        if len(request.body) > MAX_MODEL_FILE_BYTES:
            raise ValidationError({"document": [f"over the {MAX_MODEL_FILE_BYTES // 1024} KiB limit"]})
        serializer = self.ImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = split_entry(serializer.validated_data["document"])
        entry["version"] = serializer.validated_data.get("version") or entry.get("version") or ""
        try:
            version = services.model_version_create(user=request.user, **entry)
        except DjangoValidationError as exc:
            raise _drf_error(exc) from None
        return Response(ModelVersionDetailOutputSerializer(version).data, status=status.HTTP_201_CREATED)


class ModelVersionDetailApi(APIView):
    @extend_schema(
        responses=ModelVersionDetailOutputSerializer, operation_id="catalog_model_version_retrieve"
    )
    def get(self, request: Request, pk: int) -> Response:
        version = selectors.model_version_get(user=request.user, pk=pk)
        return Response(ModelVersionDetailOutputSerializer(version).data)


class ModelVersionActionApi(APIView):
    """Curators: validate, request-publication, approve (a second curator), retire (with a reason: a request
    that a second curator approves under /catalog/change-requests/)."""

    throttle_scope = ENGINE_SCOPE  # validating runs the model's reference checks in the engine

    class ActionSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    @extend_schema(
        request=ActionSerializer,
        responses={200: ModelVersionDetailOutputSerializer, **ENGINE_RESPONSES},
        operation_id="catalog_model_version_action",
        parameters=[
            OpenApiParameter(
                "action",
                str,
                OpenApiParameter.PATH,
                enum=["validate", "request-publication", "approve", "retire"],
                examples=[OpenApiExample("retire", value="retire")],
            )
        ],
        examples=[
            OpenApiExample(
                "Ask to retire", value={"reason": "superseded by a newer model"}, request_only=True
            )
        ],
    )
    def post(self, request: Request, pk: int, action: str) -> Response:
        if not selectors.is_curator(user=request.user):
            raise PermissionDenied("model curators only")
        version = get_object_or_404(ModelVersion, pk=pk)
        serializer = self.ActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            if action == "validate":
                run = engine_call(services.model_version_validate, model_version=version, user=request.user)
                if not run.success:
                    raise ValidationError({"validation": [run.message]})
            elif action == "request-publication":
                services.model_version_request_publication(model_version=version, user=request.user)
            elif action == "approve":
                services.model_version_approve_publication(model_version=version, user=request.user)
            elif action == "retire":
                services.model_version_request_retirement(
                    model_version=version,
                    user=request.user,
                    reason=serializer.validated_data.get("reason", ""),
                )
            else:
                return Response({"detail": f"unknown action '{action}'"}, status=status.HTTP_404_NOT_FOUND)
        except DjangoValidationError as exc:
            raise _drf_error(exc) from None
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        version.refresh_from_db()
        return Response(ModelVersionDetailOutputSerializer(version).data)


class ChangeRequestOutputSerializer(serializers.ModelSerializer):
    drug = serializers.SlugRelatedField(slug_field="name", read_only=True)
    # A plain string: the schema has several "status" enums already (they would collide by name).
    status = serializers.CharField(
        read_only=True, help_text="one of: " + ", ".join(CatalogChangeRequest.Status.values)
    )
    kind = serializers.CharField(
        read_only=True, help_text="one of: " + ", ".join(CatalogChangeRequest.Kind.values)
    )
    requested_by = serializers.StringRelatedField()
    decided_by = serializers.StringRelatedField(allow_null=True)  # null until it is done

    class Meta:
        model = CatalogChangeRequest
        fields = (
            "id",
            "kind",
            "status",
            "drug",
            "indication",
            "model_version",
            "current",
            "proposed",
            "reason",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "decision_note",
        )


class ChangeRequestListApi(APIView):
    """Proposed changes to drug limits, target protocols and retirements, awaiting a second curator."""

    @extend_schema(
        responses=ChangeRequestOutputSerializer(many=True), operation_id="catalog_change_requests_list"
    )
    def get(self, request: Request) -> Response:
        if not selectors.is_curator(user=request.user):
            raise PermissionDenied("model curators only")
        return Response(ChangeRequestOutputSerializer(selectors.change_requests_pending(), many=True).data)


class ChangeRequestDecisionApi(APIView):
    """A second curator approves (the change applies) or rejects; the author may withdraw (reject)."""

    class DecisionSerializer(serializers.Serializer):
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    @extend_schema(
        request=DecisionSerializer,
        responses=ChangeRequestOutputSerializer,
        operation_id="catalog_change_request_decide",
        parameters=[
            OpenApiParameter(
                "decision",
                str,
                OpenApiParameter.PATH,
                enum=["approve", "reject"],
                examples=[OpenApiExample("approve", value="approve")],
            )
        ],
        examples=[OpenApiExample("Approve", value={"note": "checked against the SmPC"}, request_only=True)],
    )
    def post(self, request: Request, pk: int, decision: str) -> Response:
        if not selectors.is_curator(user=request.user):
            raise PermissionDenied("model curators only")
        change = get_object_or_404(CatalogChangeRequest, pk=pk)
        serializer = self.DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        note = serializer.validated_data["note"]
        try:
            if decision == "approve":
                change = services.change_request_approve(change_request=change, user=request.user, note=note)
            elif decision == "reject":
                change = services.change_request_reject(change_request=change, user=request.user, note=note)
            else:
                return Response(
                    {"detail": f"unknown decision '{decision}'"}, status=status.HTTP_404_NOT_FOUND
                )
        except DjangoValidationError as exc:
            raise _drf_error(exc) from None
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        return Response(ChangeRequestOutputSerializer(change).data)
