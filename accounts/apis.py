"""REST endpoints about the authenticated user."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import user_roles


class MeApi(APIView):
    """Who the caller is and which roles it holds (for hospital systems checking their token)."""

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=OutputSerializer, operation_id="me_retrieve")
    def get(self, request: Request) -> Response:
        roles = sorted(role.value for role in user_roles(user=request.user))
        data = self.OutputSerializer({"username": request.user.get_username(), "roles": roles}).data
        return Response(data)
