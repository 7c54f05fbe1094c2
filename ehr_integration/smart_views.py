"""The SMART EHR launch: /smart/launch sends the browser to the EHR's authorisation server, /smart/callback
takes the code back and opens the launching patient's course (or patient page).

What the launch signs in is decided in ``users`` (linked accounts only). An EHR user with no link is not
signed in: with a local session already open they carry on as themselves (told so), otherwise they sign
in with their own account and land on the patient's page. Either way the page itself checks access by role
and care team, as for any other visit.
"""

from __future__ import annotations

import time

from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from audit.models import AuditEntry
from audit.recorder import record_event
from ehr_integration import cards, matching, smart
from ehr_integration.models import EhrSystem
from ehr_integration.public_urls import absolute
from ehr_integration.users import linked_user
from patients.models import Patient

SESSION_KEY = "smart_launches"
LAUNCH_TTL_S = 10 * 60  # a launch not completed within 10 minutes must be started again from the EHR
MAX_PENDING = 5


def _problem(
    request: HttpRequest, message: str, *, status: int = 400, system: EhrSystem | None = None
) -> HttpResponse:
    record_event(
        AuditEntry.Action.SIGN_IN_FAILED,
        object_type="ehr_integration.smart_launch",
        object_id=system.pk if system else "",
        details={"ehr": system.name if system else None},
        reason=f"SMART launch refused: {message}",
    )
    shown = {"message": message, "signed_in": request.user.is_authenticated}
    return render(request, "ehr_integration/launch_problem.html", shown, status=status)


@require_GET
def launch(request: HttpRequest) -> HttpResponse:
    iss = request.GET.get("iss", "")
    launch_token = request.GET.get("launch", "")
    if not launch_token:
        return _problem(request, "an EHR launch needs the 'launch' parameter; start the app from the EHR")
    try:
        system = smart.system_for_iss(iss)
        configuration = smart.discover(system)
    except smart.SmartLaunchError as error:
        return _problem(request, str(error))
    redirect_uri = absolute(request, reverse("ehr:smart_callback"))
    url, state, verifier = smart.authorization_request(
        system=system, configuration=configuration, redirect_uri=redirect_uri, launch=launch_token
    )
    now = time.time()
    pending = {
        key: value
        for key, value in (request.session.get(SESSION_KEY) or {}).items()
        if now - value.get("started", 0) < LAUNCH_TTL_S
    }
    pending = dict(sorted(pending.items(), key=lambda item: item[1]["started"])[-(MAX_PENDING - 1) :])
    pending[state] = {
        "system": system.pk,
        "verifier": verifier,
        "redirect_uri": redirect_uri,
        "authorization_endpoint": configuration.authorization_endpoint,
        "token_endpoint": configuration.token_endpoint,
        "issuer": configuration.issuer,
        "jwks_uri": configuration.jwks_uri,
        "started": now,
    }
    request.session[SESSION_KEY] = pending
    return redirect(url)


def _target(patient: Patient | None) -> str:
    if patient is None:
        return ""
    courses = cards.open_courses(patient)
    if courses:
        return reverse("dosing:course", args=[courses[0].public_id])
    return reverse("patients:detail", args=[patient.public_id])


@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    pending = dict(request.session.get(SESSION_KEY) or {})
    started = pending.pop(state, None) if state else None
    request.session[SESSION_KEY] = pending  # a state is used once
    if started is None or time.time() - started["started"] > LAUNCH_TTL_S:
        return _problem(
            request, "this launch was not started here or has expired; start the app from the EHR again"
        )
    system = EhrSystem.objects.filter(pk=started["system"], active=True).first()
    if system is None:
        return _problem(request, "the launching EHR is no longer configured here")
    if request.GET.get("error"):
        reason = request.GET.get("error_description") or request.GET["error"]
        return _problem(request, f"the EHR did not authorise the launch: {reason[:300]}", system=system)
    configuration = smart.ServerConfiguration(
        authorization_endpoint=started["authorization_endpoint"],
        token_endpoint=started["token_endpoint"],
        issuer=started["issuer"],
        jwks_uri=started["jwks_uri"],
    )
    try:
        token = smart.exchange_code(
            system=system,
            configuration=configuration,
            redirect_uri=started["redirect_uri"],
            code=request.GET.get("code", ""),
            state=state,
            verifier=started["verifier"],
        )
    except smart.SmartLaunchError as error:
        return _problem(request, str(error), system=system)
    resource = None
    if system.mrn_system():
        resource = smart.read_patient(
            system=system, patient_id=token.patient_id, access_token=token.access_token
        )
    patient = matching.patient_for(system=system, ehr_patient_id=token.patient_id, resource=resource)
    user, why_not = linked_user(system=system, fhir_user=token.fhir_user)
    details = {
        "ehr": system.name,
        "fhir_user": token.fhir_user[:300],
        "ehr_patient_id": token.patient_id[:200],
        "patient_matched": patient is not None,
        "signed_in_as": user.get_username() if user else None,
    }
    if user is not None:
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")  # audited as a sign-in
    record_event(
        AuditEntry.Action.READ,
        user=request.user if request.user.is_authenticated else None,
        patient_id=patient.public_id if patient else None,
        object_type="ehr_integration.smart_launch",
        object_id=system.pk,
        details=details,
        reason=f"SMART EHR launch from {system.name} by {token.fhir_user or 'an unnamed EHR user'}"
        + (f"; not signed in: {why_not}" if why_not else f"; signed in as {user.get_username()}"),
    )
    target = _target(patient)
    if patient is None:
        return render(
            request,
            "ehr_integration/launch_problem.html",
            {
                "message": (
                    f"The EHR's patient (id {token.patient_id}) is not known here: no identifier links it to "
                    "a patient of this application. Add the patient, or ask IT to link the EHR's id."
                ),
                "signed_in": request.user.is_authenticated,
            },
            status=404,
        )
    if user is None and request.user.is_authenticated:
        messages.warning(request, f"{why_not}: you carry on as {request.user.get_username()}.")
    if user is None and not request.user.is_authenticated:
        messages.info(request, f"{why_not}: sign in with your own account to open the patient.")
        return redirect(f"{reverse('accounts:login')}?{urlencode({'next': target})}")
    return redirect(target)
