from __future__ import annotations

from django import forms
from django.conf import settings


class BundleUploadForm(forms.Form):
    bundle = forms.FileField(
        label="FHIR R4 Bundle (JSON)",
        help_text="a Bundle about this patient, exported by the hospital's record",
    )

    def clean_bundle(self) -> bytes:
        upload = self.cleaned_data["bundle"]
        if upload.size > settings.FHIR_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(f"the file is over {settings.FHIR_MAX_UPLOAD_BYTES // 1024} KiB")
        return upload.read()
