"""REST API of the dosing workflow: courses, doses, levels, Bayesian updates, what-if, recommendations.

Courses and what hangs off them are patient data: read by clinicians and pharmacists (``dosing.selectors.
course_get``, which applies the patient access rule), written by clinicians only (``dosing.services`` says
so). An update runs after the request's transaction commits; the course page polls ``/updates/{id}/``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.idempotency import idempotent
from dosing import limits, ranges, selectors, services
from dosing.administration import usual_route
from dosing.models import BayesianUpdate, DoseAdministration, DrugLevel, Recommendation, TherapyCourse
from dosing.ranges import StrictFloatField
from dosing.results import plot_document
from mipd_engine.model import parse_model
from mipd_web.engine_calls import engine_call
from mipd_web.throttles import ENGINE_RESPONSES, ENGINE_SCOPE
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
            "notices",
            "recorded_by",
            "recorded_at",
            "entered_in_error",
            "error_reason",
        )


class LevelOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    course = _course_ref()
    recorded_by = serializers.StringRelatedField()
    confirmed_by = serializers.StringRelatedField(allow_null=True)  # null until it is done
    plausibility = StatusField(choices=DrugLevel.Plausibility.choices, read_only=True)

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
            "value_as_entered",
            "assay",
            "model_output",
            "plausibility",
            "plausibility_score",
            "confirmed_by",
            "confirmed_at",
            "confirmation_reason",
            "notices",
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
    delivery = serializers.SerializerMethodField(
        help_text="'pending' while the broker has not taken a queued update yet (it is kept and sent later)"
    )

    class Meta:
        model = BayesianUpdate
        fields = (
            "id",
            "course",
            "status",
            "delivery",
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
            "seed",
            "origin",
        )

    @extend_schema_field(serializers.ChoiceField(choices=("pending", "delivered", "none"), allow_null=False))
    def get_delivery(self, update: BayesianUpdate) -> str:
        dispatch = getattr(update, "dispatch", None)  # the reverse one-to-one raises when absent
        if dispatch is None:
            return "none"  # recorded before the outbox existed
        return "delivered" if dispatch.dispatched_at else "pending"


class UpdateDetailOutputSerializer(UpdateOutputSerializer):
    results = serializers.JSONField(
        help_text=(
            "the stored results; results.plot is the concentration plot; results.averaging (when the "
            "drug uses model selection or averaging): each model fitted with its prior weight, OFV, "
            "levels, weight and own recommendation"
        )
    )

    class Meta(UpdateOutputSerializer.Meta):
        fields = (*UpdateOutputSerializer.Meta.fields, "results")


class RecommendationOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    course = _course_ref()
    update = PublicIdRelatedField()
    reviewed_by = serializers.StringRelatedField(allow_null=True)  # null until it is done
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
            "alerts",
            "acknowledged_alerts",
            "candidates",
            "reviewed_by",
            "reviewed_at",
            "review_note",
            "final_regimen",
            "final_figures",
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
            "missing_data_reason",
            "no_organ_support_confirmed_at",
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
        mic_mg_per_l = StrictFloatField(
            physical=ranges.MIC_MG_PER_L, required=False, allow_null=True, default=None
        )
        consent_override_reason = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=2000
        )
        missing_data_reason = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            max_length=2000,
            help_text="why the course opens before the record holds everything the model needs",
        )
        no_organ_support_confirmed = serializers.BooleanField(
            required=False, default=False, help_text="the patient receives no dialysis, CRRT or ECMO"
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("patient", str, description="only this patient's courses (its public id)"),
            OpenApiParameter("status", str, enum=TherapyCourse.Status.values, description="active or closed"),
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
            if state not in TherapyCourse.Status.values:
                raise ValidationError({"status": [f"one of {', '.join(TherapyCourse.Status.values)}"]})
            courses = courses.filter(status=state)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(courses.order_by("-opened_at", "-pk"), request, self)
        return paginator.get_paginated_response(CourseOutputSerializer(page, many=True).data)

    @extend_schema(
        request=CourseOpenInputSerializer,
        responses={201: CourseDetailOutputSerializer},
        operation_id="courses_open",
        examples=[
            OpenApiExample(
                "A course on a published model",
                value={
                    "patient": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                    "model_version": 1,
                    "indication": "sepsis",
                    "target": {"metric": "trough", "low": 5, "high": 10},
                },
                request_only=True,
            )
        ],
    )
    @idempotent
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
            try:
                course = services.course_open(patient=patient, user=request.user, **data)
            except services.ModelNotApplicable as exc:  # the stop, and the published models that fit
                raise ValidationError(
                    {"model_version": [str(exc.stop)], "alternatives": exc.stop.alternatives}
                ) from None
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
        amount_mg = StrictFloatField(physical=ranges.DOSE_MG)
        route = serializers.CharField(
            max_length=32, help_text="a route of the drug and the model: iv_infusion, ..."
        )
        infusion_duration_h = StrictFloatField(
            physical=ranges.INFUSION_DURATION_H, required=False, allow_null=True, default=None
        )
        confirmation_reason = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            max_length=2000,
            help_text="why a dose answered with 409 (a duplicate, faster than the rate limit) is right",
        )

    @extend_schema(responses=DoseOutputSerializer(many=True), operation_id="courses_doses_list")
    def get(self, request: Request, pk: Any) -> Response:
        course = selectors.course_get(user=request.user, public_id=pk)
        return Response(DoseOutputSerializer(course.doses.select_related("recorded_by"), many=True).data)

    @extend_schema(
        request=DoseCreateInputSerializer,
        responses={201: DoseOutputSerializer, 400: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT},
        operation_id="courses_doses_create",
        examples=[
            OpenApiExample(
                "A 2-h infusion",
                value={
                    "given_at": "2026-01-15T08:00:00Z",
                    "amount_mg": 1000,
                    "route": "iv_infusion",
                    "infusion_duration_h": 2,
                },
                request_only=True,
            )
        ],
        description="409 when the dose looks like a duplicate or runs faster than the drug's rate limit: the "
        "body names the field and what to check; resend with confirmation_reason to record it anyway.",
    )
    @idempotent
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
        value = StrictFloatField(physical=ranges.LEVEL_VALUE, required=False, allow_null=True, default=None)
        below_lloq = serializers.BooleanField(required=False, default=False)
        lloq = StrictFloatField(physical=ranges.LLOQ, required=False, allow_null=True, default=None)
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
        examples=[
            OpenApiExample(
                "A trough level",
                value={
                    "sampled_at": "2026-01-15T19:30:00Z",
                    "value": 7.5,
                    "unit": "mg/L",
                    "assay": "immunoassay",
                },
                request_only=True,
            )
        ],
    )
    @idempotent
    def post(self, request: Request, pk: Any) -> Response:
        course = selectors.course_get(user=request.user, public_id=pk)
        serializer = self.LevelCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            level = services.level_record(course=course, user=request.user, **serializer.validated_data)
        level.refresh_from_db()  # without a broker the update (and its plausibility check) has already run
        return Response(LevelOutputSerializer(level).data, status=status.HTTP_201_CREATED)


class LevelExcludeApi(APIView):
    """Exclude a level from the fit (it stays on the plot, marked), with the reason."""

    class LevelExcludeInputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(
        request=LevelExcludeInputSerializer,
        responses=LevelOutputSerializer,
        operation_id="levels_exclude",
        examples=[
            OpenApiExample(
                "A contaminated sample", value={"reason": "drawn from the infusion line"}, request_only=True
            )
        ],
    )
    def post(self, request: Request, pk: Any) -> Response:
        level = _child_of_course(DrugLevel, request=request, pk=pk)
        serializer = self.LevelExcludeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            level = services.level_exclude(level=level, user=request.user, **serializer.validated_data)
        return Response(LevelOutputSerializer(level).data)


class LevelConfirmApi(APIView):
    """Confirm a level held as implausible (e.g. re-measured), with the reason: it enters the next fit."""

    class LevelConfirmInputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(
        request=LevelConfirmInputSerializer,
        responses=LevelOutputSerializer,
        operation_id="levels_confirm",
        examples=[
            OpenApiExample("Re-measured", value={"reason": "re-measured: same result"}, request_only=True)
        ],
    )
    def post(self, request: Request, pk: Any) -> Response:
        level = _child_of_course(DrugLevel, request=request, pk=pk)
        serializer = self.LevelConfirmInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            level = services.level_confirm(level=level, user=request.user, **serializer.validated_data)
        level.refresh_from_db()
        return Response(LevelOutputSerializer(level).data)


class EntryInErrorInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class DoseInErrorApi(APIView):
    """Mark a dose entered in error: it stays in the history, struck, and leaves every later fit."""

    @extend_schema(
        request=EntryInErrorInputSerializer,
        responses=DoseOutputSerializer,
        operation_id="doses_entered_in_error",
        examples=[OpenApiExample("Not given", value={"reason": "dose not given"}, request_only=True)],
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
        examples=[
            OpenApiExample(
                "Another patient's level", value={"reason": "result of another patient"}, request_only=True
            )
        ],
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
        updates = course.updates.select_related("requested_by", "model_version", "dispatch").order_by(
            "-requested_at", "-pk"
        )
        return Response(UpdateOutputSerializer(updates, many=True).data)

    @extend_schema(
        request=UpdateRequestInputSerializer,
        responses={202: UpdateOutputSerializer},
        operation_id="courses_updates_request",
        examples=[
            OpenApiExample("After a new creatinine", value={"trigger": "new creatinine"}, request_only=True)
        ],
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

    throttle_scope = ENGINE_SCOPE

    class WhatIfInputSerializer(serializers.Serializer):
        dose_mg = StrictFloatField(physical=ranges.DOSE_MG, help_text="dose per administration, mg")
        interval_h = StrictFloatField(physical=ranges.INTERVAL_H, help_text="dosing interval, h")
        duration_h = StrictFloatField(
            physical=ranges.INFUSION_DURATION_H,
            required=False,
            default=0.0,
            help_text="infusion duration, h (0: a bolus)",
        )
        n_doses = serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=1,
            max_value=limits.MAX_DOSES,
            default=None,
            error_messages={"max_value": limits.TOO_MANY_DOSES},
            help_text=f"empty: until further notice; the last ends at most {limits.MAX_HORIZON_H:g} h ahead",
        )
        route = serializers.CharField(
            max_length=32, required=False, default="", help_text="default: the drug's usual route"
        )
        start_at = ClinicalDateTimeField(
            required=False,
            allow_null=True,
            default=None,
            help_text=f"first dose, at most {limits.MAX_LEAD_H:g} h ahead; default: the next due time",
        )

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
            allow_null=True, help_text="the target metric: median and 90 % interval, with its unit"
        )
        figures = serializers.JSONField(
            help_text="the same figures as a candidate row: metric, PTA, P(toxic), exposure, the order"
        )
        target = serializers.JSONField(help_text="the target: description, unit")
        warnings = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        request=WhatIfInputSerializer,
        responses={200: WhatIfOutputSerializer, 409: OpenApiTypes.OBJECT, **ENGINE_RESPONSES},  # 409: a stop
        operation_id="courses_what_if",
        examples=[
            OpenApiExample(
                "1250 mg every 12 h",
                value={"dose_mg": 1250, "interval_h": 12, "duration_h": 2, "n_doses": 6},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request, pk: Any) -> Response:
        course = selectors.course_get(user=request.user, public_id=pk)
        serializer = self.WhatIfInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        regimen = dict(serializer.validated_data)
        if not regimen["route"]:
            regimen["route"] = usual_route(course.drug, parse_model(course.model_version.document)) or ""
        with service_errors():
            result = engine_call(services.what_if, course=course, regimen=regimen)
        case, figures = result["case"], result["figures"]
        label = f"what if: {regimen['dose_mg']:g} mg every {regimen['interval_h']:g} h"
        plot = plot_document(
            case=case,
            course=course,
            fit=result["fit"],
            forecast=result["forecast"],
            label=label,
            forecast_from_h=result["start_h"],
        )
        target = result["target"] or {}
        data = {
            "regimen": {
                **{k: v for k, v in regimen.items() if k != "start_at"},
                "start_h": result["start_h"],
            },
            "t0": case.origin,
            "start_h": result["start_h"],
            "plot": {**plot, "now_h": case.now_h},
            "predicted": {
                "median": figures["metric_median"],
                "ci90": figures["metric_ci90"],
                "unit": target.get("unit", ""),
            },
            "figures": figures,
            "target": target,
            "warnings": [*case.warnings, *result["fit"].get("warnings", [])],
        }
        return Response(self.WhatIfOutputSerializer(data).data)


class RecommendationListApi(APIView):
    """A course's recommendations, newest first, with their review status."""

    @extend_schema(
        responses=RecommendationOutputSerializer(many=True), operation_id="courses_recommendations_list"
    )
    def get(self, request: Request, pk: Any) -> Response:
        course = selectors.course_get(user=request.user, public_id=pk)
        # The update is listed by its public id only: joined, without its stored inputs and results.
        rows = (
            course.recommendations.select_related("reviewed_by", "update")
            .defer("update__inputs", "update__results")
            .order_by("-created_at", "-pk")
        )
        return Response(RecommendationOutputSerializer(rows, many=True).data)


class RecommendationReviewApi(APIView):
    """A pharmacist approves, modifies or rejects a recommendation, signing with password and a new code.

    Approving (with or without changes) needs every red warning acknowledged: ``acknowledged_alerts`` lists
    the ``code`` of each of the recommendation's ``alerts``.
    """

    throttle_scope = ENGINE_SCOPE  # a changed regimen is forecast again before it is signed

    class ReviewInputSerializer(serializers.Serializer):
        decision = serializers.ChoiceField(choices=["approve", "modify", "reject"])
        password = serializers.CharField(help_text="the signature: the pharmacist's password")
        otp_code = serializers.CharField(
            max_length=12, help_text="the signature's second factor: a new code from the authenticator"
        )
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
        final_regimen = serializers.JSONField(
            required=False, allow_null=True, default=None, help_text="modify: dose_mg, interval_h, duration_h"
        )
        acknowledged_alerts = serializers.ListField(
            child=serializers.CharField(max_length=120), required=False, default=list
        )
        preview_token = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            source="forecast_token",
            help_text="modify: the preview_token of POST .../preview-change/ for the same regimen",
        )

    @extend_schema(
        request=ReviewInputSerializer,
        responses={200: RecommendationOutputSerializer, **ENGINE_RESPONSES},
        operation_id="recommendations_review",
        examples=[
            OpenApiExample(
                "Approve, signed",
                value={
                    "decision": "approve",
                    "password": "the pharmacist's password",
                    "otp_code": "123456",
                    "note": "renal function stable",
                    "acknowledged_alerts": [],
                },
                request_only=True,
            )
        ],
    )
    @idempotent
    def post(self, request: Request, pk: Any) -> Response:
        recommendation = _child_of_course(Recommendation, request=request, pk=pk)
        serializer = self.ReviewInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            recommendation = engine_call(
                services.recommendation_review,
                recommendation=recommendation,
                user=request.user,
                **serializer.validated_data,
            )
        return Response(RecommendationOutputSerializer(recommendation).data)


class ModificationPreviewApi(APIView):
    """What a changed regimen would give (order, P(target), P(toxic), exposure, forecast) before signing."""

    throttle_scope = ENGINE_SCOPE

    class PreviewInputSerializer(serializers.Serializer):
        final_regimen = serializers.JSONField(
            help_text="dose_mg, interval_h, duration_h, start_at (optional)"
        )

    class PreviewOutputSerializer(serializers.Serializer):
        figures = serializers.JSONField(help_text="order, pta, p_toxic, p_toxic_by_limit, exposure, forecast")

    @extend_schema(
        request=PreviewInputSerializer,
        responses={200: PreviewOutputSerializer, **ENGINE_RESPONSES},
        operation_id="recommendations_preview_change",
        examples=[
            OpenApiExample(
                "A changed dose",
                value={"final_regimen": {"dose_mg": 1000, "interval_h": 12, "duration_h": 2}},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request, pk: Any) -> Response:
        recommendation = _child_of_course(Recommendation, request=request, pk=pk)
        serializer = self.PreviewInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        regimen = serializer.validated_data["final_regimen"]
        if not isinstance(regimen, dict):
            raise ValidationError({"final_regimen": ["expected an object: dose_mg, interval_h, duration_h"]})
        with service_errors():
            figures = engine_call(
                services.modification_preview,
                recommendation=recommendation,
                user=request.user,
                final_regimen=regimen,
            )
        return Response({"figures": figures})
