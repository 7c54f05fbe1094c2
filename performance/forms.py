from django import forms


class AlertCloseForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        help_text="why the alert is closed: e.g. the model was recalibrated, or the drift is explained",
    )
