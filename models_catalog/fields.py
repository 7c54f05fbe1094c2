"""A JSON document stored as text, so that its key order survives the database.

PostgreSQL's ``jsonb`` (Django's JSONField) re-orders object keys. In a model file the order has meaning: a
parameter may refer only to parameters defined before it, and the first output is the default one. A model
file stored as jsonb could therefore fail to load, or silently change which output a level is compared with.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models


class OrderedJSONField(models.TextField):
    description = "JSON document kept with its key order (stored as text)"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else json.loads(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"not valid JSON: {exc}") from None
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, allow_nan=False)

    def value_to_string(self, obj: Any) -> str:
        return self.get_prep_value(self.value_from_object(obj)) or ""
