"""Forms of the curator pages. They parse and bound input; the services and the engine judge the model."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from mipd_engine.model import PopulationModel
from models_catalog.labels import route_label

MAX_MODEL_FILE_BYTES = 256 * 1024  # the largest published model files are a few kB


def _parse_json(raw: bytes | str, field: str) -> Any:
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise forms.ValidationError("the file is not UTF-8 text", code="encoding") from None
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", code="json"
        ) from None


def split_entry(document: Any) -> dict[str, Any]:
    """A bare mipd-model/1 file, or a library entry (mipd-library/1) carrying its card and checks."""
    if isinstance(document, dict) and "library_format" in document:
        return {
            "document": document.get("model"),
            "version": document.get("version"),
            "model_card": document.get("model_card"),
            "reference_checks": document.get("reference_checks"),
            "transcription": document.get("transcription"),
            "covariate_sources": document.get("covariate_sources"),
        }
    return {"document": document}


class ModelFileForm(forms.Form):
    """Upload a file or paste its text: a model file, or a library entry with model card and checks."""

    file = forms.FileField(required=False, help_text=f"JSON, at most {MAX_MODEL_FILE_BYTES // 1024} KiB")
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false"}))
    version = forms.CharField(
        required=False, max_length=32, help_text="semantic version; taken from a library entry when empty"
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data.get("file")
        if upload is None:
            return None
        if upload.size > MAX_MODEL_FILE_BYTES:
            raise forms.ValidationError(
                f"the file is {upload.size // 1024} KiB; the limit is {MAX_MODEL_FILE_BYTES // 1024} KiB",
                code="too_large",
            )
        return _parse_json(upload.read(), "file")

    def clean_text(self) -> Any:
        text = self.cleaned_data.get("text", "")
        if not text.strip():
            return None
        if len(text.encode("utf-8")) > MAX_MODEL_FILE_BYTES:
            raise forms.ValidationError(
                f"the text is over the {MAX_MODEL_FILE_BYTES // 1024} KiB limit", code="too_large"
            )
        return _parse_json(text, "text")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        file_document, text_document = cleaned.get("file"), cleaned.get("text")
        if (file_document is None) == (text_document is None):
            raise forms.ValidationError("give either a file or the JSON text, not both and not neither")
        cleaned["source_field"] = "file" if file_document is not None else "text"
        entry = split_entry(file_document if file_document is not None else text_document)
        version = (cleaned.get("version") or "").strip() or entry.get("version") or ""
        cleaned["entry"] = {**entry, "version": str(version)}
        return cleaned


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class DecisionForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class NewVersionForm(forms.Form):
    version = forms.CharField(max_length=32, help_text="semantic version, e.g. 1.1.0")


class PreviewForm(forms.Form):
    """A regimen and covariates for a typical patient; fields for covariates come from the model."""

    route = forms.ChoiceField()
    dose_mg = forms.FloatField(min_value=0.001, max_value=100_000, initial=1000)
    interval_h = forms.FloatField(min_value=0.5, max_value=24 * 14, initial=12)
    doses = forms.IntegerField(min_value=1, max_value=100, initial=6)
    duration_h = forms.FloatField(
        min_value=0, max_value=24 * 14, initial=1, required=False, help_text="infusions only"
    )

    def __init__(self, *args: Any, model: PopulationModel, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model = model
        self.fields["route"].choices = [(name, route_label(name)) for name in model.routes]
        self.covariate_names = []
        for name, spec in model.covariates.items():
            if name not in model.block.used_inputs:
                continue
            label = f"{name} ({spec.unit})" if spec.unit else name
            initial = spec.reference
            if initial is None and spec.min is not None and spec.max is not None:
                initial = (spec.min + spec.max) / 2
            if spec.type == "boolean":
                initial = 0
            self.fields[f"cov_{name}"] = forms.FloatField(label=label, initial=initial)
            self.covariate_names.append(name)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("route") == "iv_infusion" and not cleaned.get("duration_h"):
            self.add_error("duration_h", "an infusion needs a duration")
        return cleaned

    def case_inputs(self) -> dict[str, Any]:
        data = self.cleaned_data
        dose: dict[str, Any] = {"time_h": 0.0, "amount_mg": data["dose_mg"], "route": data["route"]}
        if data["route"] == "iv_infusion":
            dose["duration_h"] = data["duration_h"]
        if data["doses"] > 1:
            dose.update(interval_h=data["interval_h"], additional=data["doses"] - 1)
        return {
            "covariates": {name: data[f"cov_{name}"] for name in self.covariate_names},
            "doses": [dose],
            "until_h": data["interval_h"] * data["doses"],
        }


class TargetProtocolForm(forms.Form):
    indication = forms.CharField(max_length=200)
    target = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text='engine target, e.g. {"metric": "auc24", "low": 400, "high": 600, "toxicity_limit": 800}',
    )
    source = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    institution_note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    active = forms.BooleanField(required=False, initial=True)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), label="Why this change", help_text="for the second curator"
    )

    def clean_target(self) -> Any:
        target = _parse_json(self.cleaned_data["target"], "target")
        if not isinstance(target, dict):
            raise forms.ValidationError("expected a JSON object")
        return target


class DrugLimitsForm(forms.Form):
    """The hospital's limits for one drug: hard limits of every regimen the engine proposes."""

    dose_step_mg = forms.FloatField(required=False, min_value=0.001, label="Dose step (mg)")
    strengths_mg = forms.CharField(required=False, label="Unit strengths (mg, comma-separated; oral forms)")
    max_single_dose_mg = forms.FloatField(required=False, min_value=0.001, label="Maximum single dose (mg)")
    max_daily_dose_mg = forms.FloatField(required=False, min_value=0.001, label="Maximum daily dose (mg)")
    max_daily_dose_mg_per_kg = forms.FloatField(required=False, min_value=0.001, label="Maximum mg/kg/day")
    max_infusion_rate_mg_per_h = forms.FloatField(
        required=False, min_value=0.001, label="Maximum infusion rate (mg/h)"
    )
    usual_infusion_duration_h = forms.FloatField(
        required=False,
        min_value=0.01,
        label="Usual infusion duration (h)",
        help_text="the dose form's default",
    )
    standard_concentration_mg_per_ml = forms.FloatField(
        required=False,
        min_value=0.001,
        label="Standard infusion concentration (mg/mL)",
        help_text="gives the pump rate in mL/h",
    )
    interval_options_h = forms.CharField(required=False, label="Dosing intervals (h, comma-separated)")
    # A choice, not a checkbox: an unticked checkbox is simply absent, and absent means "not stated".
    continuous_infusion = forms.TypedChoiceField(
        choices=[("no", "no"), ("yes", "yes")],
        coerce=lambda value: value == "yes",
        label="Consider continuous infusion",
    )
    max_plausible_concentration = forms.FloatField(
        required=False, min_value=0.001, label="Implausible level above (drug's concentration unit)"
    )
    limits_source = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Source of these limits")
    change_reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), label="Why change them", help_text="for the second curator"
    )

    def clean(self) -> dict[str, Any]:
        """Every limit must be in the request: a missing one is an error, never a silent blank."""
        cleaned = super().clean()
        missing = [name for name in self.fields if name not in self.data]
        if missing:
            raise forms.ValidationError(
                "the limits are one complete set: this request lacks " + ", ".join(missing), code="incomplete"
            )
        return cleaned

    @staticmethod
    def _numbers(text: str, field: str) -> list[float]:
        try:
            values = [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise forms.ValidationError("numbers separated by commas", code="numbers") from None
        if any(value <= 0 for value in values):
            raise forms.ValidationError("every value must be positive", code="positive")
        return values

    def clean_strengths_mg(self) -> list[float]:
        return self._numbers(self.cleaned_data.get("strengths_mg") or "", "strengths_mg")

    def clean_interval_options_h(self) -> list[float]:
        return self._numbers(self.cleaned_data.get("interval_options_h") or "", "interval_options_h")
