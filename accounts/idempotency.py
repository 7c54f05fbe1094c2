"""``Idempotency-Key`` on creating POSTs: a retried request gets the first answer instead of a second record.

The key is scoped to the user, method and path; the stored answer is written in the same transaction as the
record it describes, so a request that failed (rolled back) leaves no key behind and may simply be retried.
The same key with a different body is refused with 422: it is a client bug, not a retry.
"""

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (a UUID) per intended record, up to 255 printable ASCII characters. A retry with "
        "the same key and body returns the first response (header Idempotent-Replayed: true) and records "
        "nothing new; the same key with a different body answers 422."
    ),
)


def _checked_key(raw: str) -> str:
    if not raw or len(raw) > MAX_KEY_LENGTH or not all(" " < char <= "~" for char in raw):
        raise ValidationError({HEADER: [f"1 to {MAX_KEY_LENGTH} printable ASCII characters, no spaces"]})
    return raw


def idempotent(handler: Callable[..., Response]) -> Callable[..., Response]:
    """Make an APIView ``post`` honour ``Idempotency-Key`` (without the header it behaves as before)."""

    @functools.wraps(handler)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        raw_key = request.headers.get(HEADER)
        if raw_key is None:
            return handler(view, request, *args, **kwargs)
        key = _checked_key(raw_key)
        body_sha256 = hashlib.sha256(request.body).hexdigest()
        with transaction.atomic():
            # The row lock makes a concurrent retry wait for the first request, then replay its answer.
            record, created = IdempotencyRecord.objects.select_for_update().get_or_create(
                user=request.user,
                key=key,
                method=request.method,
                path=request.path[:500],
                defaults={"body_sha256": body_sha256, "status_code": 0},
            )
            if not created:
                if record.body_sha256 != body_sha256:
                    return Response(
                        {HEADER: ["this key was used with a different request body"]},
                        status=status.HTTP_422_UNPROCESSABLE_ENTITY,
                    )
                return Response(
                    record.response_body, status=record.status_code, headers={"Idempotent-Replayed": "true"}
                )
            response = handler(view, request, *args, **kwargs)
            if response.status_code >= 300:  # nothing was created: forget the key, a retry runs again
                transaction.set_rollback(True)
                return response
            record.status_code = response.status_code
            record.response_body = json.loads(JSONRenderer().render(response.data))
            record.save(update_fields=["status_code", "response_body"])
        return response

    return extend_schema(parameters=[IDEMPOTENCY_KEY_PARAMETER])(wrapper)
