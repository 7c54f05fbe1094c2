"""Home, sign-in (password, then the authenticator code for those who need one) and TOTP enrolment."""

from __future__ import annotations

import base64

import segno
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import otp
from accounts.forms import CodeForm
from accounts.selectors import user_roles
from audit.models import AuditEntry
from audit.recorder import record_event


@login_required
def home(request: HttpRequest) -> HttpResponse:
    roles = sorted(user_roles(user=request.user))
    return render(request, "accounts/home.html", {"roles": roles})


class LoginView(auth_views.LoginView):
    """Django's login (django-axes counts the failures and locks the user name); says why one was ended."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        context = super().get_context_data(**kwargs)
        context["idle_timeout"] = self.request.GET.get("idle") == "1"
        return context


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


@login_required
def second_factor(request: HttpRequest) -> HttpResponse:
    """The authenticator code after the password; a first-time user enrols an app here first."""
    user = request.user
    if user.is_verified():  # type: ignore[union-attr]
        return redirect(_next_url(request))
    if not otp.has_device(user=user):
        return _enrol(request)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = otp.verify_code(user=user, code=form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            record_event(AuditEntry.Action.SECOND_FACTOR, object_type="auth.user", object_id=user.pk)
            return redirect(_next_url(request))
        record_event(
            AuditEntry.Action.SECOND_FACTOR_FAILED,
            object_type="auth.user",
            object_id=user.pk,
            reason="wrong, reused or throttled authenticator code",
        )
        form.add_error("code", "this code is wrong or was already used: wait for the next one")
    return render(request, "accounts/second_factor.html", {"form": form, "next": _next_url(request)})


def _enrol(request: HttpRequest) -> HttpResponse:
    """A user without an authenticator: show a new secret (QR code and text), confirm it with one code."""
    user = request.user
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=False)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token("".join(form.cleaned_data["code"].split())):
            device.confirmed = True
            device.save()
            otp_login(request, device)
            record_event(
                AuditEntry.Action.SECOND_FACTOR,
                object_type="otp_totp.totpdevice",
                object_id=device.pk,
                reason="authenticator app enrolled",
            )
            messages.success(
                request, "Your authenticator app is set up; it is asked at every sign-in and signature."
            )
            return redirect(_next_url(request))
        form.add_error("code", "this code does not match: check the app's clock and type the current code")
    secret = base64.b32encode(device.bin_key).decode("ascii")
    context = {
        "form": form,
        "secret": secret,
        "qr_svg": mark_safe(segno.make(device.config_url, error="m").svg_inline(scale=4)),
        "next": _next_url(request),
    }
    return render(request, "accounts/second_factor_setup.html", context)
