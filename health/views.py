from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from health.selectors import system_status


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Service status for load balancers and monitoring: no login, no patient data.

    HTTP 200 when the database answers (status ``ok`` or ``degraded``), 503 when it does not.
    """
    status = system_status()
    return JsonResponse(status.as_dict(), status=503 if status.status == "error" else 200)
