"""Django admin: the hospital's monitoring device types (their declared error models). Courses, doses, levels
and series change only through the pages and services (checks, audit)."""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from dosing.models import MonitoringDevice
from mipd_engine.errors import ModelError
from mipd_engine.model import parse_error_model
from mipd_units import concentration as units


class MonitoringDeviceForm(forms.ModelForm):
    class Meta:
        model = MonitoringDevice
        fields = ("code", "name", "manufacturer", "unit", "residual_error", "error_source", "active")

    def clean_unit(self) -> str:
        unit = self.cleaned_data["unit"]
        if not units.is_concentration_unit(unit):
            raise ValidationError(f"'{unit}' is not a concentration unit (mg/L, µg/mL, µmol/L ...)")
        return unit

    def clean_residual_error(self) -> Any:
        error = self.cleaned_data["residual_error"]
        try:
            parse_error_model("residual_error", error)
        except ModelError as exc:
            raise ValidationError(str(exc)) from None
        return error


@admin.register(MonitoringDevice)
class MonitoringDeviceAdmin(admin.ModelAdmin):
    """A type's error model is copied into each series at import: changing it never changes a stored fit."""

    form = MonitoringDeviceForm
    list_display = ("name", "code", "manufacturer", "unit", "residual_error", "active")

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False  # series refer to it; retire it with "active" instead
