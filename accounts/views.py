from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.selectors import user_roles


@login_required
def home(request: HttpRequest) -> HttpResponse:
    roles = sorted(user_roles(user=request.user))
    return render(request, "accounts/home.html", {"roles": roles})
