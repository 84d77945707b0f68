"""A real local SMTP server for tests: aiosmtpd, with STARTTLS or SMTPS and AUTH.

It speaks the protocol for real (EHLO, STARTTLS with a throwaway certificate from
`tests.security.tls_proxy.make_certificates`, AUTH PLAIN/LOGIN against one user, MAIL,
RCPT, DATA); what it accepts is parsed back with the `email` package into `messages`.
A test can make it refuse recipients (`refuse_rcpt = "550 ..."`), answer DATA with an
error (`data_reply`), or take the message and drop the connection before answering
(`drop_after_data`: the case where the sender cannot know whether it arrived).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.security.tls_proxy import ServerCert, make_certificates


class _Controller(Controller):
    """aiosmtpd's threaded controller, listening on a port the system picks (0): it
    binds, then knows its port, so no other process can take it in between."""

    def _create_server(self) -> Any:
        return self._bind_any_port()

    async def _bind_any_port(self) -> Any:
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
        )
        # before `start()` connects to it (`_trigger_server`) and the test reads it
        self.port = server.sockets[0].getsockname()[1]
        return server

    def factory(self) -> Any:
        # aiosmtpd warns that AUTH without STARTTLS is unsafe: on the SMTPS listener
        # every byte is TLS already (it just does not count that as TLS)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    tls: bool  # whether the session was encrypted when the message came
    login: str | None


@dataclass
class _Handler:
    server: SmtpServer

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.server.refuse_rcpt:
            return self.server.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if self.server.data_reply:
            return self.server.data_reply
        login = session.auth_data if session.authenticated else None
        self.server.messages.append(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                message=BytesParser(policy=policy.default).parsebytes(raw),  # type: ignore[arg-type]
                raw=raw,
                tls=server.transport.get_extra_info("ssl_object") is not None,
                login=login,
            )
        )
        if self.server.drop_after_data:
            server.transport.close()  # the message is here; the client never hears so
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    """`with SmtpServer(tmp_path) as smtp:` — listening on 127.0.0.1:`smtp.port`."""

    directory: Path
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = "brandpulse"
    password: str = "s3cret-Smtp-Pw"
    auth: bool = True
    refuse_rcpt: str | None = None
    data_reply: str | None = None
    drop_after_data: bool = False
    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (user, accepted)
    port: int = 0
    cert: ServerCert | None = None
    _controller: Controller | None = None

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        ok = user == self.username and password == self.password
        self.logins.append((user, ok))
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    def __enter__(self) -> SmtpServer:
        self.cert = make_certificates(self.directory, "smtp")
        context = self.cert.server_context()
        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": 0}
        if self.tls == "starttls":
            kwargs |= {"tls_context": context, "require_starttls": True}
        elif self.tls == "ssl":
            kwargs |= {"ssl_context": context}
        if self.auth:
            # aiosmtpd only counts STARTTLS as TLS for AUTH; SMTPS is encrypted throughout
            kwargs |= {"authenticator": self._authenticate, "auth_required": True,
                       "auth_require_tls": self.tls == "starttls"}  # fmt: skip
        self._controller = _Controller(_Handler(self), **kwargs)
        self._controller.start()
        self.port = self._controller.port
        return self

    def __exit__(self, *exc: object) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def ca_file(self) -> Path:
        assert self.cert is not None
        return self.cert.ca_file

    def email_config(self, **overrides: Any) -> dict[str, Any]:
        """The `email:` section that sends to this server."""
        section: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "tls": self.tls,
            "from": "BrandPulse <alerts@brandpulse.example>",
            "to": ["pr-team@example.com", "Oncall <oncall@example.com>"],
            "ca_certs": str(self.ca_file),
            "timeout": "10s",
        }
        if self.auth:
            section |= {"username": self.username, "password": self.password}
        return section | overrides
