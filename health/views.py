import hmac

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from health.selectors import system_status


def may_see_details(request: HttpRequest) -> bool:
    """The monitoring system (``Authorization: Bearer <HEALTHZ_TOKEN>``) or a staff member signed in with
    the second factor; everyone else sees the overall status only."""
    token = settings.HEALTHZ_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    user = getattr(request, "user", None)
    verified = getattr(user, "is_verified", lambda: False)
    return bool(user is not None and user.is_authenticated and user.is_staff and verified())


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Service status for load balancers and monitoring: no patient data, details only for the monitoring
    token or staff. HTTP 200 when ``ok`` or ``degraded``, 503 when ``failing`` (the database is down)."""
    status = system_status()
    body = status.as_dict() if may_see_details(request) else {"status": status.status}
    return JsonResponse(body, status=503 if status.status == "failing" else 200)
