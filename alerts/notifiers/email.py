"""Alerts by e-mail, over SMTP (the standard library's `smtplib`).

Transport security is never optional where credentials travel: `tls: starttls` (the
default, port 587) upgrades the connection and refuses a server that does not offer
STARTTLS rather than sending in clear; `tls: ssl` speaks TLS from the first byte
(SMTPS, port 465); `tls: none` is for a relay on this machine (config validation
refuses a password over it to another host). Certificates are checked against the
system's CAs, or `email.ca_certs`.

Failures map onto `NotifierError` by SMTP's own classes of reply: a 4xx is transient
(greylisting, a full queue: retried at a later check), a 5xx is permanent (a refused
recipient or sender, bad credentials: someone must change the configuration). A
connection that breaks after the message went out (during DATA) may have delivered it:
`maybe_delivered`. SMTP cannot read back what it sent, so `find` says so (`CannotTell`)
and the engine sends again in that case; the deterministic Message-ID lets a mail
client show the repeat as the same message.

The password is never logged: smtplib's debug output is off, and every error text is
passed through `brandpulse.secrets.redact` with the password before it goes anywhere.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from alerts.model import Alert, Delivery
from alerts.notifiers.base import CannotTell, Notifier, NotifierError
from alerts.notifiers.email_templates import (
    build_email,
    build_notice_email,
    sender_domain,
    wire_bytes,
)
from brandpulse.secrets import redact, reveal

if TYPE_CHECKING:
    from alerts.health import HealthNotice
    from brandpulse.config import Config, EmailConfig

log = logging.getLogger(__name__)

Phase = Literal["connect", "envelope", "data"]


def _reply_text(resp: bytes | str | None) -> str:
    if isinstance(resp, bytes):
        return resp.decode("utf-8", "replace")
    return resp or ""


class EmailNotifier(Notifier):
    """Sends each alert as one e-mail to every address of `to`."""

    name: ClassVar[str] = "email"
    supports_threads: ClassVar[bool] = True  # In-Reply-To / References

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        to: list[str],
        tls: Literal["starttls", "ssl", "none"] = "starttls",
        username: str | None = None,
        password: str | None = None,
        ca_certs: Path | None = None,
        timeout: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not to:
            raise ValueError("EmailNotifier needs at least one recipient (email.to)")
        if bool(username) != bool(password):
            raise ValueError("EmailNotifier: username and password go together")
        self.host = host
        self.port = port
        self.sender = sender
        self.to = list(to)
        self.tls = tls
        self.username = username
        self._password = password
        self.ca_certs = ca_certs
        self.timeout = timeout
        self.clock = clock
        self.domain = sender_domain(sender)
        self._envelope_from = parseaddr(sender)[1]
        self._envelope_to = [parseaddr(a)[1] for a in self.to]

    @classmethod
    def configured(cls, config: Config) -> bool:
        return config.email.host is not None

    @classmethod
    def build(cls, config: Config) -> EmailNotifier:
        return cls.from_config(config.email)

    @classmethod
    def from_config(cls, email: EmailConfig, **overrides: object) -> EmailNotifier:
        assert email.host is not None and email.sender is not None
        kwargs: dict[str, object] = {
            "host": email.host,
            "port": email.effective_port,
            "sender": email.sender,
            "to": email.to,
            "tls": email.tls,
            "username": email.username,
            "password": reveal(email.password),
            "ca_certs": email.ca_certs,
            "timeout": email.timeout.total_seconds(),
        }
        kwargs.update(overrides)
        return cls(**kwargs)  # type: ignore[arg-type]

    # -- the contract -----------------------------------------------------------

    def send(self, alert: Alert, *, reply_to: Delivery | None = None) -> Delivery:
        """Mail the alert; a follow-up of a wave names the wave's first message
        (`reply_to.thread_root`, a Message-ID) in In-Reply-To and References."""
        root = reply_to.thread_root if reply_to is not None else None
        msg = build_email(alert, sender=self.sender, to=self.to, domain=self.domain,
                          reply_to_id=root)  # fmt: skip
        self._deliver(msg)
        log.info("alert %s mailed to %d recipient(s) via %s", alert.alert_id, len(self.to), self.host)
        return Delivery(
            notifier=self.name,
            alert_id=alert.alert_id,
            delivered_at=self.clock(),
            ts=str(msg["Message-ID"]),
            thread_ts=root,
        )

    def send_notice(self, notice: HealthNotice) -> Delivery:
        msg = build_notice_email(notice, sender=self.sender, to=self.to, domain=self.domain)
        self._deliver(msg)
        return Delivery(notifier=self.name, alert_id=notice.notice_id,
                        delivered_at=self.clock(), ts=str(msg["Message-ID"]))  # fmt: skip

    def find(
        self, alert: Alert, *, reply_to: Delivery | None = None, channel: str | None = None
    ) -> Delivery | None:
        """SMTP has no way to read back what was sent (that would be IMAP, on a mailbox
        BrandPulse does not own): the engine sends again, under the same Message-ID."""
        raise CannotTell("email cannot read back what it sent (SMTP has no history)")

    def check(self) -> str:
        """Connect, secure the connection and log in, without sending anything."""
        with self._session():
            pass
        return f"smtp {self.host}:{self.port} ({self.tls}) to {len(self.to)} recipient(s)"

    # -- SMTP -------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_certs) if self.ca_certs else None)

    def _connect(self) -> smtplib.SMTP:
        if self.tls == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def _session(self) -> _Session:
        return _Session(self)

    def _deliver(self, msg: EmailMessage) -> None:
        phase: Phase = "connect"
        try:
            with self._session() as smtp:
                phase = "envelope"
                code, resp = smtp.mail(self._envelope_from)
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, resp, self._envelope_from)
                refused: dict[str, tuple[int, bytes]] = {}
                for rcpt in self._envelope_to:
                    code, resp = smtp.rcpt(rcpt)
                    if code not in (250, 251):
                        refused[rcpt] = (code, resp)
                if len(refused) == len(self._envelope_to):
                    raise smtplib.SMTPRecipientsRefused(refused)  # type: ignore[arg-type]
                for rcpt, (code, resp) in refused.items():
                    log.warning("email: %s refused recipient %s: %d %s",
                                self.host, rcpt, code, _reply_text(resp))  # fmt: skip
                # From here on the server may have the message: a broken connection
                # leaves its fate unknown.
                phase = "data"
                code, resp = smtp.data(wire_bytes(msg))
                if code != 250:
                    raise smtplib.SMTPDataError(code, resp)
        except NotifierError:
            raise
        except (smtplib.SMTPException, OSError) as exc:
            raise self._failure(exc, phase) from None

    def _failure(self, exc: BaseException, phase: Phase) -> NotifierError:
        """The NotifierError for an SMTP failure: transient 4xx, permanent 5xx, and a
        broken connection during DATA as possibly delivered. Never holds the password."""
        where = f"{self.host}:{self.port}"
        retryable, maybe = True, False
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{rcpt}: {code} {_reply_text(resp)}"
                               for rcpt, (code, resp) in exc.recipients.items())  # fmt: skip
            retryable = any(400 <= code < 500 for code in codes)
            cause = f"{where} refused every recipient ({detail})"
        elif isinstance(exc, smtplib.SMTPResponseException):
            code, text = exc.smtp_code, _reply_text(exc.smtp_error)
            retryable = not 500 <= code < 600
            what = {
                smtplib.SMTPAuthenticationError: "refused the login (check email.username/password)",
                smtplib.SMTPSenderRefused: "refused the sender",
                smtplib.SMTPDataError: "refused the message",
            }.get(type(exc), "answered with an error")
            cause = f"{where} {what}: {code} {text}"
        elif isinstance(exc, smtplib.SMTPNotSupportedError):
            retryable = False
            cause = f"{where} does not support what is needed: {exc}"
        elif isinstance(exc, ssl.SSLCertVerificationError):
            retryable = False
            cause = (f"{where}: the server certificate is not trusted ({exc.verify_message}); "
                     "set email.ca_certs to the CA that signed it")  # fmt: skip
        else:
            # disconnected, timed out, refused, a TLS failure: transient; after the
            # message was handed over, it may have arrived
            maybe = phase == "data"
            cause = f"{where}: {type(exc).__name__}: {exc}" + (
                " (the connection broke after the message was sent: it may have arrived)"
                if maybe else ""
            )
        secrets = [self._password] if self._password else []
        return NotifierError(self.name, redact(cause, secrets), retryable=retryable,
                             maybe_delivered=maybe)  # fmt: skip


class _Session:
    """A connected, secured and logged-in SMTP session; closed on exit (QUIT when the
    connection is still up). Failures while setting it up are mapped like a send's."""

    def __init__(self, notifier: EmailNotifier) -> None:
        self.notifier = notifier
        self.smtp: smtplib.SMTP | None = None

    def __enter__(self) -> smtplib.SMTP:
        n = self.notifier
        try:
            smtp = self.smtp = n._connect()
            smtp.ehlo()
            if n.tls == "starttls":
                if not smtp.has_extn("starttls"):
                    raise NotifierError(
                        n.name,
                        f"{n.host}:{n.port} does not offer STARTTLS; refusing to send in clear "
                        "(set email.tls: ssl for an SMTPS port)",
                        retryable=False,
                    )
                smtp.starttls(context=n._context())
                smtp.ehlo()
            if n.username and n._password:
                smtp.login(n.username, n._password)
        except NotifierError:
            self._close()
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self._close()
            raise n._failure(exc, "connect") from None
        return smtp

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _close(self) -> None:
        if self.smtp is None:
            return
        try:
            self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            self.smtp.close()
        self.smtp = None
