#!/usr/bin/python3
"""A small bearer-token server for docker-registry's `auth: token` (the Docker
token protocol), for the integration tests only.

usage: token-server.py DIR PORT SERVICE ISSUER

At start it makes an RSA key and a self-signed certificate, writes the
certificate to DIR/token.crt (the registry's rootcertbundle), then answers
GET /token?service=S&scope=TYPE:NAME:ACTIONS[&scope=...] with
{"token", "access_token", "expires_in", "issued_at"}: a JWT signed RS256 whose
x5c header carries the certificate.

Grants: with Basic testuser/testpass (the htpasswd of the tests) every action
asked for; anonymous: pull only (catalog refused); a wrong password: 401.
TOKEN_TTL (env, seconds, default 300) sets expires_in. Each request is logged
to stdout as one line (method, scopes, user, granted), never with a secret.
Needs PyJWT and cryptography (Debian's /usr/bin/python3 has both)."""
import base64
import datetime
import http.server
import json
import os
import sys
import time
import urllib.parse
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

USER, PASSWORD = "testuser", os.environ.get("DTH_TEST_REG_PASS", "testpass")


def make_key(directory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dth-test-token-issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    tmp = os.path.join(directory, "token.crt.tmp")
    with open(tmp, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    os.rename(tmp, os.path.join(directory, "token.crt"))
    der = cert.public_bytes(serialization.Encoding.DER)
    return key, base64.b64encode(der).decode()


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    directory, port, service, issuer = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ttl = int(os.environ.get("TOKEN_TTL", "300"))
    key, x5c = make_key(directory)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # the one-line log below replaces it
            pass

        def reply(self, status, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="dth-test-token"')
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/token":
                self.reply(404, {"details": "not found"})
                return
            q = urllib.parse.parse_qs(url.query)
            user = None
            auth = self.headers.get("Authorization", "")
            if auth[:6].lower() == "basic ":
                try:
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                except ValueError:
                    u, p = "", ""
                if u != USER or p != PASSWORD:
                    print("token: 401 bad credentials", flush=True)
                    self.reply(401, {"details": "incorrect username or password"})
                    return
                user = u
            access = []
            for scope in q.get("scope", []):
                for one in scope.split(" "):
                    parts = one.split(":")
                    if len(parts) < 3:
                        continue
                    typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
                    if user is None:
                        actions = [a for a in actions if a == "pull"]
                    if actions:
                        access.append({"type": typ, "name": name, "actions": actions})
            now = int(time.time())
            claims = {"iss": issuer, "sub": user or "", "aud": q.get("service", [service])[0],
                      "exp": now + ttl, "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex,
                      "access": access}
            token = jwt.encode(claims, pem, algorithm="RS256", headers={"x5c": [x5c]})
            print("token: 200 user=%s access=%s" % (user or "-", json.dumps(access)), flush=True)
            self.reply(200, {"token": token, "access_token": token, "expires_in": ttl,
                             "issued_at": datetime.datetime.now(datetime.timezone.utc)
                             .strftime("%Y-%m-%dT%H:%M:%SZ")})

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("token server on 127.0.0.1:%d" % port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
