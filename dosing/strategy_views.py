"""The page where curators choose how a drug's published models are used: pinned, selection or averaging."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from dosing.averaging import strategy_of, strategy_set
from dosing.models import DrugModelStrategy
from models_catalog.models import Drug, ModelVersion
from models_catalog.views import curator_required


class StrategyForm(forms.Form):
    mode = forms.ChoiceField(
        choices=DrugModelStrategy.Mode.choices,
        widget=forms.RadioSelect,
        label="How the drug's models are used",
        help_text="Selection and averaging use every published model whose hard domain fits the patient",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Reason",
        help_text="protocol or committee decision; kept in the audit trail",
    )

    def __init__(self, *args: Any, model_ids: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_ids = model_ids
        for model_id in model_ids:
            self.fields[f"weight_{model_id}"] = forms.FloatField(
                label=f"Prior weight of {model_id}",
                min_value=0.001,
                max_value=1000.0,
                help_text="relative; 1 for every model when nothing favours one",
            )

    def prior_weights(self) -> dict[str, float]:
        return {model_id: self.cleaned_data[f"weight_{model_id}"] for model_id in self.model_ids}


@curator_required
def drug_strategy_edit(request: HttpRequest, name: str) -> HttpResponse:
    drug = get_object_or_404(Drug, name=name)
    model_ids = sorted(
        set(ModelVersion.objects.published().filter(drug=drug).values_list("model_id", flat=True))
    )
    current = strategy_of(drug)
    initial: dict[str, Any] = {"mode": current.mode}
    initial.update({f"weight_{m}": current.prior_weight(m) for m in model_ids})
    form = StrategyForm(request.POST or None, initial=initial, model_ids=model_ids)
    if request.method == "POST" and form.is_valid():
        try:
            strategy_set(
                drug=drug,
                mode=form.cleaned_data["mode"],
                prior_weights=form.prior_weights(),
                reason=form.cleaned_data["reason"],
                user=request.user,
            )
        except PermissionDenied:
            raise
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(
                request, f"{drug.display_name}: the models are now used by {form.cleaned_data['mode']}."
            )
            return redirect("models_catalog:index")
    return render(request, "dosing/drug_strategy.html", {"form": form, "drug": drug, "model_ids": model_ids})
