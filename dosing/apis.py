"""REST API of the dosing workflow: courses, doses, levels, Bayesian updates, what-if, recommendations.

Courses and what hangs off them are patient data: read by clinicians and pharmacists (``dosing.selectors.
course_get``, which applies the patient access rule), written by clinicians only (``dosing.services`` says
so). An update runs after the request's transaction commits; the course page polls ``/updates/{id}/``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dosing import selectors, services
from dosing.models import BayesianUpdate, DoseAdministration, DrugLevel, Recommendation, TherapyCourse
from dosing.results import plot_document
from models_catalog.models import ModelVersion, TargetProtocol
from patients.apis import (
    ClinicalDateTimeField,
    PublicIdRelatedField,
    StatusField,
    paginated_serializer,
    service_errors,
)
from patients.selectors import patient_get, patients_visible, require_clinical_role


def _child_of_course(model: type[Any], *, request: Request, pk: Any) -> Any:
    """A dose, level or update by its public id, through the patient access helper (403 not yours, 404)."""
    return selectors.course_child_get(model, user=request.user, public_id=pk)


def _course_ref() -> PublicIdRelatedField:
    return PublicIdRelatedField()


# Output serializers


class DoseOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    course = _course_ref()
    recorded_by = serializers.StringRelatedField()

    class Meta:
        model = DoseAdministration
        fields = (
            "id",
            "course",
            "given_at",
            "amount_mg",
            "route",
            "infusion_duration_h",
            "recorded_by",
            "recorded_at",
            "entered_in_error",
            "error_reason",
        )


class LevelOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    course = _course_ref()
    recorded_by = serializers.StringRelatedField()

    class Meta:
        model = DrugLevel
        fields = (
            "id",
            "course",
            "sampled_at",
            "value",
            "unit",
            "value_model_unit",
            "below_lloq",
            "lloq",
            "lloq_model_unit",
            "assay",
            "model_output",
            "excluded",
            "exclusion_reason",
            "recorded_by",
            "recorded_at",
            "entered_in_error",
            "error_reason",
        )


class UpdateOutputSerializer(serializers.ModelSerializer):
    """An update without its results: what a list or a progress poll needs."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    course = _course_ref()
    requested_by = serializers.StringRelatedField()
    model_version = serializers.StringRelatedField()
    is_finished = serializers.BooleanField()
    status = StatusField(choices=BayesianUpdate.Status.choices, read_only=True)

    class Meta:
        model = BayesianUpdate
        fields = (
            "id",
            "course",
            "status",
            "is_finished",
            "trigger",
            "requested_by",
            "requested_at",
            "started_at",
            "finished_at",
            "timings_s",
            "error",
            "model_version",
            "engine_version",
            "inputs_sha256",
            "origin",
        )


class UpdateDetailOutputSerializer(UpdateOutputSerializer):
    results = serializers.JSONField(help_text="the stored results; results.plot is the concentration plot")

    class Meta(UpdateOutputSerializer.Meta):
        fields = (*UpdateOutputSerializer.Meta.fields, "results")


class RecommendationOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    course = _course_ref()
    update = PublicIdRelatedField()
    reviewed_by = serializers.StringRelatedField()
    status = StatusField(choices=Recommendation.Status.choices, read_only=True)

    class Meta:
        model = Recommendation
        fields = (
            "id",
            "course",
            "update",
            "status",
            "basis",
            "regimen",
            "predicted",
            "probability_of_target",
            "probability_of_toxicity",
            "rationale",
            "uncertainty_text",
            "warnings",
            "candidates",
            "reviewed_by",
            "reviewed_at",
            "review_note",
            "final_regimen",
            "created_at",
        )


class CourseOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    patient = PublicIdRelatedField()
    drug = serializers.SlugRelatedField(slug_field="name", read_only=True)
    model_version_label = serializers.StringRelatedField(source="model_version")
    opened_by = serializers.StringRelatedField()
    status = StatusField(choices=TherapyCourse.Status.choices, read_only=True)

    class Meta:
        model = TherapyCourse
        fields = (
            "id",
            "patient",
            "drug",
            "model_version",
            "model_version_label",
            "target_protocol",
            "target",
            "indication",
            "mic_mg_per_l",
            "status",
            "consent_override_reason",
            "opened_by",
            "opened_at",
        )


CoursePageSerializer = paginated_serializer("CoursePage", CourseOutputSerializer)


class CourseDetailOutputSerializer(CourseOutputSerializer):
    doses = DoseOutputSerializer(many=True)
    levels = LevelOutputSerializer(many=True)
    latest_update = UpdateOutputSerializer(allow_null=True)
    recommendation = RecommendationOutputSerializer(
        allow_null=True, help_text="the current recommendation (not superseded), if any"
    )

    class Meta(CourseOutputSerializer.Meta):
        fields = (*CourseOutputSerializer.Meta.fields, "doses", "levels", "latest_update", "recommendation")


def _course_detail(course: TherapyCourse) -> dict[str, Any]:
    update = selectors.latest_update(course=course)
    recommendation = selectors.current_recommendation(course=course)
    return {
        **CourseOutputSerializer(course).data,
        "doses": DoseOutputSerializer(course.doses.select_related("recorded_by"), many=True).data,
        "levels": LevelOutputSerializer(course.levels.select_related("recorded_by"), many=True).data,
        "latest_update": UpdateOutputSerializer(update).data if update else None,
        "recommendation": RecommendationOutputSerializer(recommendation).data if recommendation else None,
    }


# Endpoints


class CourseListApi(APIView):
    """Therapy courses; a clinician opens one on a published model version, with consent or a reason."""

    class CourseOpenInputSerializer(serializers.Serializer):
        patient = serializers.UUIDField(help_text="the patient's public id")
        model_version = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.all())
        target_protocol = serializers.PrimaryKeyRelatedField(
            queryset=TargetProtocol.objects.all(), required=False, allow_null=True, default=None
        )
        target = serializers.JSONField(
            required=False, allow_null=True, default=None, help_text="an engine target; else the protocol's"
        )
        indication = serializers.CharField(max_length=200)
        mic_mg_per_l = serializers.FloatField(required=False, allow_null=True, default=None)
        consent_override_reason = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=2000
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("patient", str, description="only this patient's courses (its public id)"),
            OpenApiParameter("status", str, description="active or closed"),
            OpenApiParameter("page", int, description="page number"),
        ],
        responses=CoursePageSerializer,
        operation_id="courses_list",
    )
    def get(self, request: Request) -> Response:
        patients = patients_visible(user=request.user)
        courses = TherapyCourse.objects.filter(patient__in=patients).select_related(
            "patient", "drug", "model_version", "opened_by"
        )
        if patient := request.query_params.get("patient"):
            try:
                courses = courses.filter(patient__public_id=uuid.UUID(patient))
            except ValueError:
                raise ValidationError({"patient": ["a patient's public id"]}) from None
        if state := request.query_params.get("status"):
            courses = courses.filter(status=state)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(courses.order_by("-opened_at", "-pk"), request, self)
        return paginator.get_paginated_response(CourseOutputSerializer(page, many=True).data)

    @extend_schema(
        request=CourseOpenInputSerializer,
        responses={201: CourseDetailOutputSerializer},
        operation_id="courses_open",
    )
    def post(self, request: Request) -> Response:
        require_clinical_role(user=request.user)
        serializer = self.CourseOpenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        try:
            patient = patient_get(user=request.user, public_id=data.pop("patient"))
        except Http404:
            raise ValidationError({"patient": ["no such patient"]}) from None
        with service_errors():
            course = services.course_open(patient=patient, user=request.user, **data)
        return Response(_course_detail(course), status=status.HTTP_201_CREATED)


class CourseDetailApi(APIView):
    @extend_schema(responses=CourseDetailOutputSerializer, operation_id="courses_retrieve")
    def get(self, request: Request, pk: Any) -> Response:
        course = selectors.course_get(user=request.user, public_id=pk)
        return Response(_course_detail(course))


class DoseListApi(APIView):
    """Doses given in a course (a dose is recorded when given: at most an hour ahead)."""

    class DoseCreateInputSerializer(serializers.Serializer):
        given_at = ClinicalDateTimeField(help_text="local time, or UTC / the hospital's offset")
        amount_mg = serializers.FloatField()
        route = serializers.CharField(max_length=32, help_text="a route of the model: iv_infusion, ...")
        infusion_duration_h = serializers.FloatField(required=False, allow_null=True, default=None)

    @extend_schema(responses=DoseOutputSerializer(many=True), operation_id="courses_doses_list")
    def get(self, request: Request, pk: Any) -> Response:
        course = selectors.course_get(user=request.user, public_id=pk)
        return Response(DoseOutputSerializer(course.doses.select_related("recorded_by"), many=True).data)

    @extend_schema(
        request=DoseCreateInputSerializer,
        responses={201: DoseOutputSerializer},
        operation_id="courses_doses_create",
    )
    def post(self, request: Request, pk: Any) -> Response:
        course = selectors.course_get(user=request.user, public_id=pk)
        serializer = self.DoseCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            dose = services.dose_record(course=course, user=request.user, **serializer.validated_data)
        return Response(DoseOutputSerializer(dose).data, status=status.HTTP_201_CREATED)


class LevelListApi(APIView):
    """Drug levels of a course: a value, or below the LLOQ with the LLOQ; converted to the model's unit."""

    class LevelCreateInputSerializer(serializers.Serializer):
        sampled_at = ClinicalDateTimeField(help_text="local time, or UTC / the hospital's offset")
        value = serializers.FloatField(required=False, allow_null=True, default=None)
        below_lloq = serializers.BooleanField(required=False, default=False)
        lloq = serializers.FloatField(required=False, allow_null=True, default=None)
        unit = serializers.CharField(max_length=16, help_text="mg/L, µg/mL, ng/mL, µmol/L ...")
        assay = serializers.CharField(required=False, allow_blank=True, default="", max_length=120)
        model_output = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=40, help_text="default: the first"
        )

    @extend_schema(responses=LevelOutputSerializer(many=True), operation_id="courses_levels_list")
    def get(self, request: Request, pk: Any) -> Response:
        course = selectors.course_get(user=request.user, public_id=pk)
        return Response(LevelOutputSerializer(course.levels.select_related("recorded_by"), many=True).data)

    @extend_schema(
        request=LevelCreateInputSerializer,
        responses={201: LevelOutputSerializer},
        operation_id="courses_levels_create",
    )
    def post(self, request: Request, pk: Any) -> Response:
        course = selectors.course_get(user=request.user, public_id=pk)
        serializer = self.LevelCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            level = services.level_record(course=course, user=request.user, **serializer.validated_data)
        return Response(LevelOutputSerializer(level).data, status=status.HTTP_201_CREATED)


class LevelExcludeApi(APIView):
    """Exclude a level from the fit (it stays on the plot, marked), with the reason."""

    class LevelExcludeInputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(
        request=LevelExcludeInputSerializer, responses=LevelOutputSerializer, operation_id="levels_exclude"
    )
    def post(self, request: Request, pk: Any) -> Response:
        level = _child_of_course(DrugLevel, request=request, pk=pk)
        serializer = self.LevelExcludeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            level = services.level_exclude(level=level, user=request.user, **serializer.validated_data)
        return Response(LevelOutputSerializer(level).data)


class EntryInErrorInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class DoseInErrorApi(APIView):
    """Mark a dose entered in error: it stays in the history, struck, and leaves every later fit."""

    @extend_schema(
        request=EntryInErrorInputSerializer,
        responses=DoseOutputSerializer,
        operation_id="doses_entered_in_error",
    )
    def post(self, request: Request, pk: Any) -> Response:
        dose = _child_of_course(DoseAdministration, request=request, pk=pk)
        serializer = EntryInErrorInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            dose = services.entry_mark_in_error(entry=dose, user=request.user, **serializer.validated_data)
        return Response(DoseOutputSerializer(dose).data)


class LevelInErrorApi(APIView):
    """Mark a level entered in error (a wrong result, not a valid one left out: that is "exclude")."""

    @extend_schema(
        request=EntryInErrorInputSerializer,
        responses=LevelOutputSerializer,
        operation_id="levels_entered_in_error",
    )
    def post(self, request: Request, pk: Any) -> Response:
        level = _child_of_course(DrugLevel, request=request, pk=pk)
        serializer = EntryInErrorInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            level = services.entry_mark_in_error(entry=level, user=request.user, **serializer.validated_data)
        return Response(LevelOutputSerializer(level).data)


class UpdateListApi(APIView):
    """A course's Bayesian updates, newest first (without results); POST asks for a new one."""

    class UpdateRequestInputSerializer(serializers.Serializer):
        trigger = serializers.CharField(required=False, allow_blank=True, default="", max_length=150)

    @extend_schema(responses=UpdateOutputSerializer(many=True), operation_id="courses_updates_list")
    def get(self, request: Request, pk: Any) -> Response:
        course = selectors.course_get(user=request.user, public_id=pk)
        updates = course.updates.select_related("requested_by", "model_version").order_by(
            "-requested_at", "-pk"
        )
        return Response(UpdateOutputSerializer(updates, many=True).data)

    @extend_schema(
        request=UpdateRequestInputSerializer,
        responses={202: UpdateOutputSerializer},
        operation_id="courses_updates_request",
    )
    def post(self, request: Request, pk: Any) -> Response:
        course = selectors.course_get(user=request.user, public_id=pk)
        serializer = self.UpdateRequestInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reason = serializer.validated_data["trigger"].strip()
        with service_errors():
            update = services.update_request(
                course=course,
                user=request.user,
                trigger=f"requested by {request.user}" + (f": {reason}" if reason else ""),
            )
        return Response(UpdateOutputSerializer(update).data, status=status.HTTP_202_ACCEPTED)


class UpdateDetailApi(APIView):
    """One update with its status, timings, error and results (poll until ``is_finished``)."""

    @extend_schema(responses=UpdateDetailOutputSerializer, operation_id="updates_retrieve")
    def get(self, request: Request, pk: Any) -> Response:
        update = _child_of_course(BayesianUpdate, request=request, pk=pk)
        return Response(UpdateDetailOutputSerializer(update).data)


class WhatIfApi(APIView):
    """The forecast of a regimen typed by the clinician, from the next dose on; nothing is stored."""

    class WhatIfInputSerializer(serializers.Serializer):
        dose_mg = serializers.FloatField(min_value=0, help_text="dose per administration, mg")
        interval_h = serializers.FloatField(min_value=0, help_text="dosing interval, h")
        duration_h = serializers.FloatField(
            required=False, min_value=0, default=0.0, help_text="infusion duration, h"
        )
        n_doses = serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=1,
            default=None,
            help_text="empty: until further notice",
        )
        route = serializers.CharField(max_length=32, default="iv_infusion")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            for field in ("dose_mg", "interval_h"):
                if attrs[field] <= 0:
                    raise ValidationError({field: ["must be positive"]})
            return attrs

    class WhatIfOutputSerializer(serializers.Serializer):
        regimen = serializers.JSONField(help_text="the regimen as forecast, start_h from t0")
        t0 = serializers.DateTimeField(help_text="clock time of t = 0 h")
        start_h = serializers.FloatField(help_text="the regimen's first dose (the next dose time)")
        plot = serializers.JSONField(help_text="the plot document (same layout as an update's results.plot)")
        predicted = serializers.JSONField(
            allow_null=True, help_text="the target metric, when the forecast gives one (else null)"
        )
        warnings = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        request=WhatIfInputSerializer, responses=WhatIfOutputSerializer, operation_id="courses_what_if"
    )
    def post(self, request: Request, pk: Any) -> Response:
        course = selectors.course_get(user=request.user, public_id=pk)
        serializer = self.WhatIfInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        regimen = dict(serializer.validated_data)
        with service_errors():
            result = services.what_if(course=course, regimen=regimen)
        case, forecast = result["case"], result["forecast"]
        label = f"what if: {regimen['dose_mg']:g} mg every {regimen['interval_h']:g} h"
        data = {
            "regimen": {**regimen, "start_h": case.next_dose_h},
            "t0": case.origin,
            "start_h": case.next_dose_h,
            "plot": plot_document(case=case, course=course, fit=forecast, forecast=forecast, label=label),
            "predicted": forecast.get("predicted"),
            "warnings": [*case.warnings, *forecast.get("warnings", [])],
        }
        return Response(self.WhatIfOutputSerializer(data).data)


class RecommendationListApi(APIView):
    """A course's recommendations, newest first, with their review status."""

    @extend_schema(
        responses=RecommendationOutputSerializer(many=True), operation_id="courses_recommendations_list"
    )
    def get(self, request: Request, pk: Any) -> Response:
        course = selectors.course_get(user=request.user, public_id=pk)
        rows = course.recommendations.select_related("reviewed_by").order_by("-created_at", "-pk")
        return Response(RecommendationOutputSerializer(rows, many=True).data)
