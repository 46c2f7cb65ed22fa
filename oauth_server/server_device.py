"""The device grant's page verbs of ``AuthorizationServer`` (RFC 8628 §3.1-§3.3).

``/device_authorization`` starts a request; the verification page looks a typed user code up,
checks its anti-forgery token, and records the signed-in user's decision, which the device's
next poll of the token endpoint (``grants.device_code``) redeems.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from oauth_server import audit, device_authorization, user_codes
from oauth_server.errors import ConsentForbidden, InvalidClient, InvalidRequest, UnauthorizedClient
from oauth_server.params import Params
from oauth_server.records import Client
from oauth_server.server_base import ServerBase


class DeviceVerbs(ServerBase):
    """/device_authorization and the verification page's decisions."""

    async def start_device_authorization(self, client: Client, params: Params) -> dict[str, Any]:
        """RFC 8628 §3.1-§3.2: ``/device_authorization`` after client authentication."""
        if not self.settings.device_authorization_grant:
            raise UnauthorizedClient("the device authorization grant is not enabled")
        return await device_authorization.start(self.model, self.settings, client, params, self.now())

    async def open_device_request(self, user_code: str, browser_secret: str | None,
                                  form_token: str | None) -> device_authorization.DeviceRequest:
        """The verification page's lookup of a code typed into its entry form (RFC 8628 §3.3).

        Anything but a pending, unexpired code of an existing client is the same ``InvalidRequest``.
        """
        if not device_authorization.form_is_genuine(browser_secret, form_token):
            raise ConsentForbidden("the form is not valid for this browser; reload the page")
        code, record = await device_authorization.find(self.model, user_code, self.now())
        try:
            client = await self._client(record.client_id)
        except InvalidClient:
            client = None
        if client is None:
            raise InvalidRequest(device_authorization.INVALID_CODE)
        return device_authorization.DeviceRequest(code, record, client)

    async def check_device_form(self, user_code: str, browser_secret: str | None,
                                form_token: str | None) -> device_authorization.DeviceForm:
        """The anti-forgery check of a posted decision: this browser, this code."""
        code = user_codes.normalize(user_code) or ""
        if not device_authorization.form_is_genuine(browser_secret, form_token, code):
            raise ConsentForbidden("the form is not valid for this browser and code; reload the page")
        request = await self.open_device_request(
            code, browser_secret, device_authorization.entry_token(browser_secret or ""))
        return device_authorization.DeviceForm(request)

    async def approve_device(self, form: device_authorization.DeviceForm, subject: str, *,
                             allowed_scopes: Collection[str] | None = None,
                             selected_scopes: Collection[str] | None = None) -> None:
        """The signed-in user approved: a grant for them, which the device's next poll redeems."""
        if not subject:
            raise ValueError("subject is required")
        record = form.request.record
        scopes = device_authorization.granted_scopes(record, allowed_scopes, selected_scopes)
        grant = device_authorization.new_grant(self.settings, record, subject, scopes, self.now())
        if not await self.model.approve_device_authorization(record.user_code_digest, self.now(), grant):
            raise InvalidRequest(device_authorization.INVALID_CODE)
        await self.audit.emit(audit.ConsentApproved(
            time=grant.created_at, client_id=record.client_id, subject=subject, grant_id=grant.grant_id,
            scopes=scopes, requested_scopes=record.scopes, resource=record.resource))

    async def deny_device(self, form: device_authorization.DeviceForm) -> None:
        """The user denied: the device's next poll gets ``access_denied`` (RFC 8628 §3.5)."""
        record = form.request.record
        if not await self.model.deny_device_authorization(record.user_code_digest, self.now()):
            raise InvalidRequest(device_authorization.INVALID_CODE)
        await self.audit.emit(audit.ConsentDenied(time=self.now(), client_id=record.client_id,
                                                  requested_scopes=record.scopes, resource=record.resource))
