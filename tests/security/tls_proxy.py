"""Test helpers: a throwaway CA and server certificate, and a TCP proxy in front of a
real server that can terminate TLS, record request headers, or swallow requests.

The local Elasticsearch node (`esnode`, jars from Maven Central) has no x-pack, so
its HTTP layer cannot speak TLS. Production clusters do, behind their own
certificate; to test that path for real, `TcpProxy(..., tls=cert)` puts a genuine TLS
terminator (Python's `ssl`, the same OpenSSL a reverse proxy would use) in front of
the real node: the client does a real handshake, verifies a real chain or
fingerprint, and talks to a real Elasticsearch behind it. The proxy also records the
headers of each request it forwards, so a test can see the `Authorization` a client
sent. `blackhole=True` accepts connections and never answers (a hung node).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class ServerCert:
    ca_file: Path  # PEM of the CA that signed the certificate
    cert_file: Path
    key_file: Path
    fingerprint: str  # SHA-256 of the server certificate, AA:BB:... as openssl prints it

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def make_certificates(directory: Path, name: str = "test") -> ServerCert:
    """A new CA and a certificate it signs for localhost / 127.0.0.1."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"BrandPulse {name} CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = (directory / f"{name}-ca.pem", directory / f"{name}-cert.pem", directory / f"{name}-key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, 64, 2))
    return ServerCert(*paths, fingerprint)


@dataclass
class TcpProxy:
    """Forward 127.0.0.1:`port` to `target` ("host:port"), optionally behind TLS."""

    target: str
    port: int = 0
    tls: ServerCert | None = None
    blackhole: bool = False
    requests: list[dict[str, str]] = field(default_factory=list)  # headers, lower-case names

    def __post_init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        ctx = self.tls.server_context() if self.tls else None
        # A port given is one the test holds closed (the `closed_port` fixture, bound
        # with SO_REUSEPORT): the proxy listens beside that holder, and once it
        # stops the port refuses again without ever having been free to take.
        server = asyncio.start_server(
            self._handle, "127.0.0.1", self.port, ssl=ctx, reuse_port=bool(self.port)
        )
        self._server = asyncio.run_coroutine_threadsafe(server, self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        loop, server = self._loop, self._server

        async def close() -> None:
            if server is not None:
                server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, buf: bytes) -> bytes:
        """Take complete requests off the front of `buf`, recording their headers."""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return buf
            head = buf[:end].decode("latin-1").split("\r\n")
            headers = {"request-line": head[0]}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(buf) < end + 4 + length:
                return buf
            with self._lock:
                self.requests.append(headers)
            buf = buf[end + 4 + length :]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.blackhole:
                while await reader.read(65536):
                    pass
                return
            host, _, port = self.target.rpartition(":")
            up_reader, up_writer = await asyncio.open_connection(host, int(port))

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, record: bool) -> None:
                buf = b""
                try:
                    while data := await src.read(65536):
                        if record:
                            buf = self._record(buf + data)
                        dst.write(data)
                        await dst.drain()
                finally:
                    dst.close()

            await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False),
                                 return_exceptions=True)  # fmt: skip
        except (OSError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
