"""The users of ``bench_morning_round.py`` for locust: clinicians on their patients, pharmacists signing.

Read by ``locust -f`` (never run by ``run_all.py``: the name starts with an underscore). The plan (accounts,
courses, free level times, the authenticator keys) comes from the JSON file named by ``MIPD_ROUND_PLAN``.

* A **clinician** signs in as the browser does (login form, CSRF cookie) and, over and over: opens one of
  their patients' page, the course page and its results panel; about once every ``level_every_s`` seconds
  (exponential gaps) adds a level through the API (session and ``X-CSRFToken``, an ``Idempotency-Key``),
  then polls the course's ``status.json`` every ``poll_s`` seconds until the update the level asked for
  has finished and reads the course's recommendations: the time from the level's 201 to its
  recommendation listed is reported as the pseudo-request ``level saved -> recommendation visible``; a
  level whose recommendation has not shown when the run ends (or after ``visible_timeout_s``) is a failure
  of that row.
* A **pharmacist** cannot use an API token (refused for accounts with a second factor,
  ``accounts/tokens.py``), so signs in as the browser does: password, then a TOTP code on
  ``/accounts/second-factor/``. Then, over and over: opens the review queue, one course it lists and that
  course's recommendations (API), and approves the pending one through the API with password and a fresh
  TOTP code, acknowledging its red warnings. The authenticator accepts each 30-s code once (and the next
  step's), so a pharmacist signs at most twice per 30 s; without a fresh code it only reads.

A review refused because the recommendation was superseded or signed meanwhile (a clinician added a level;
another pharmacist was faster) is a normal outcome and counted as ``OUTCOME`` rows, not as an error.
"""

from __future__ import annotations

import binascii
import itertools
import json
import os
import random
import re
import time
import uuid
from typing import Any

from django_otp.oath import totp  # RFC 6238, plain Python: no Django settings needed
from gevent import GreenletExit
from locust import HttpUser, between, events, task

PLAN: dict[str, Any] = json.loads(open(os.environ["MIPD_ROUND_PLAN"], encoding="utf-8").read())
_clinician_ids = itertools.count()
_pharmacist_ids = itertools.count()
COURSE_LINK = re.compile(r'href="/courses/([0-9a-f-]{36})/#recommendation"')
STEP_S = 30
LEVEL = "level saved -> recommendation visible"


def _report(request_type: str, name: str, started: float, exception: Exception | None = None) -> None:
    events.request.fire(
        request_type=request_type,
        name=name,
        response_time=(time.perf_counter() - started) * 1000,
        response_length=0,
        exception=exception,
        context={},
    )


class _SignedIn(HttpUser):
    abstract = True

    def sign_in(self, username: str, password: str) -> None:
        self.client.get("/accounts/login/", name="login page")
        self.client.post(
            "/accounts/login/",
            {"username": username, "password": password, "csrfmiddlewaretoken": self.csrf(), "next": "/"},
            name="login (password)",
        )

    def csrf(self) -> str:
        return self.client.cookies.get("csrftoken", "")

    def api_headers(self) -> dict[str, str]:
        return {"X-CSRFToken": self.csrf(), "Idempotency-Key": str(uuid.uuid4())}


class Clinician(_SignedIn):
    fixed_count = PLAN["n_clinicians"]
    wait_time = between(3, 8)

    def on_start(self) -> None:
        self.account = PLAN["clinicians"][next(_clinician_ids) % len(PLAN["clinicians"])]
        self.sign_in(self.account["username"], self.account["password"])
        self.next_level_at = time.monotonic() + random.uniform(0, PLAN["level_every_s"])

    @task
    def round_of_one_patient(self) -> None:
        course = random.choice(self.account["courses"])
        self.client.get(f"/patients/{course['patient']}/", name="patient page")
        self.client.get(f"/courses/{course['course']}/", name="course page")
        self.client.get(f"/courses/{course['course']}/results/", name="course results panel")
        if time.monotonic() >= self.next_level_at and course["level_times"]:
            self.add_level(course)
            self.next_level_at = time.monotonic() + random.expovariate(1 / PLAN["level_every_s"])

    def add_level(self, course: dict[str, Any]) -> None:
        status_url = f"/courses/{course['course']}/status.json"
        before = self.client.get(status_url, name="course status poll").json().get("update")
        sampled_at, value = course["level_times"].pop(0), round(random.gauss(12.0, 2.5), 1)
        with self.client.post(
            f"/api/v1/courses/{course['course']}/levels/",
            json={"sampled_at": sampled_at, "value": value, "unit": "mg/L"},
            headers=self.api_headers(),
            name="API: add level",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
        saved = time.perf_counter()
        deadline = saved + PLAN["visible_timeout_s"]
        try:
            while True:
                time.sleep(PLAN["poll_s"])
                status = self.client.get(status_url, name="course status poll").json()
                if status.get("update") not in (None, before) and status.get("finished"):
                    break
                if time.perf_counter() > deadline:
                    _report("LATENCY", LEVEL, saved, TimeoutError("not finished in time"))
                    return
        except GreenletExit:  # the run ended first: a level whose recommendation never showed counts
            _report("LATENCY", LEVEL, saved, TimeoutError("not finished when the run ended"))
            raise
        if status["status"] != "succeeded":
            problem = RuntimeError(f"update {status['status']}: {status.get('error', '')[:200]}")
            _report("LATENCY", LEVEL, saved, problem)
            return
        listed = self.client.get(
            f"/api/v1/courses/{course['course']}/recommendations/", name="API: course recommendations"
        ).json()
        shown = any(rec["update"] == status["update"] for rec in listed)
        missing = None if shown else RuntimeError("the update succeeded but lists no recommendation")
        _report("LATENCY", LEVEL, saved, missing)


class Pharmacist(_SignedIn):
    fixed_count = PLAN["n_pharmacists"]
    wait_time = between(3, 8)

    def on_start(self) -> None:
        self.account = PLAN["pharmacists"][next(_pharmacist_ids) % len(PLAN["pharmacists"])]
        self.key = binascii.unhexlify(self.account["totp_key_hex"])
        self.last_step = -1
        self.sign_in(self.account["username"], self.account["password"])
        code = self.fresh_code()
        while code is None:  # cannot happen on the first use; kept for the reader
            time.sleep(1)
            code = self.fresh_code()
        self.client.post(
            "/accounts/second-factor/",
            {"code": code, "csrfmiddlewaretoken": self.csrf(), "next": "/"},
            name="login (second factor)",
        )

    def fresh_code(self) -> str | None:
        """A code of this 30-s step or the next that the device has not accepted yet, or None."""
        now_step = int(time.time() // STEP_S)
        for step in (now_step, now_step + 1):
            if step > self.last_step:
                self.last_step = step
                return f"{totp(self.key, step=STEP_S, t0=0, digits=6, drift=step - now_step):06d}"
        return None

    @task
    def review_one(self) -> None:
        queue = self.client.get("/review/", name="review queue page")
        courses = COURSE_LINK.findall(queue.text)
        if not courses:
            return
        course = random.choice(courses[:10])  # the most urgent, spread over the pharmacists
        self.client.get(f"/courses/{course}/", name="course page (pharmacist)")
        listed = self.client.get(
            f"/api/v1/courses/{course}/recommendations/", name="API: course recommendations (pharmacist)"
        ).json()
        pending = [rec for rec in listed if rec["status"] == "pending_review"]
        if not pending:
            return
        code = self.fresh_code()
        if code is None:
            return  # no fresh authenticator code before the next 30-s step: read only
        rec = pending[0]
        started = time.perf_counter()
        with self.client.post(
            f"/api/v1/recommendations/{rec['id']}/review/",
            json={
                "decision": "approve",
                "password": self.account["password"],
                "otp_code": code,
                "acknowledged_alerts": [alert["code"] for alert in rec["alerts"]],
                "note": "morning round",
            },
            headers=self.api_headers(),
            name="API: approve recommendation",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                return
            text = response.text
            if response.status_code in (400, 409) and ("superseded" in text or "approved" in text):
                response.success()  # superseded or signed meanwhile: reported apart, not an error
                _report("OUTCOME", "review refused: superseded or signed meanwhile", started)
                return
            response.failure(f"{response.status_code}: {text[:200]}")
