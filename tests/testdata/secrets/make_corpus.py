"""Write corpus.jsonl (FAKE secrets in context) and clean.jsonl (text that must pass unchanged).

Every secret is generated here from a fixed seed in its vendor's real format; none is a real
credential. Run ``python tests/testdata/secrets/make_corpus.py`` after changing it; the files are
committed so that a test run does not depend on this script.

corpus.jsonl entries: ``{"category", "kind": "text"|"argv"|"json", "input", "secrets": [...]}``;
every secret (and every fragment of it of 6+ characters between spaces, & or ;) must be absent from
the scrubbed output. clean.jsonl entries: ``{"category", "input"}``, which must come out unchanged.
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
rng = random.Random(13)

ALNUM = string.ascii_letters + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"
UPPER_ALNUM = string.ascii_uppercase + string.digits
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


def pick(alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def password(n: int = 14) -> str:
    """A password with letters, digits and one symbol that needs no quoting."""
    return pick(ALNUM, n - 2) + rng.choice("!#%^*") + pick(string.digits, 1)


def b64url_json(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def jwt() -> str:
    head = b64url_json({"alg": "HS256", "typ": "JWT"})
    body = b64url_json({"sub": pick(string.digits, 10), "name": "Jane Fake", "iat": 1700000000})
    return f"{head}.{body}.{pick(URLSAFE, 43)}"


def pem(kind: str = "RSA PRIVATE KEY", lines: int = 8) -> str:
    body = "\n".join(pick(B64, 64) for _ in range(lines))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----"


def luhn_complete(prefix: str, length: int) -> str:
    digits = prefix + pick(string.digits, length - len(prefix) - 1)
    for check in string.digits:
        candidate = digits + check
        total = 0
        for index, char in enumerate(reversed(candidate)):
            d = int(char)
            if index % 2 == 1:
                d = d * 2 - 9 if d > 4 else d * 2
            total += d
        if total % 10 == 0:
            return candidate
    raise AssertionError


entries: list[dict[str, Any]] = []


def text(category: str, template: str, *secrets: str) -> None:
    entries.append({"category": category, "kind": "text", "input": template.format(*secrets), "secrets": list(secrets)})


def argv(category: str, args: list[str], *secrets: str) -> None:
    entries.append({"category": category, "kind": "argv", "input": args, "secrets": list(secrets)})


def value(category: str, obj: Any, *secrets: str) -> None:
    entries.append({"category": category, "kind": "json", "input": obj, "secrets": list(secrets)})


# -- the findings of issue 13 -------------------------------------------------------------------
discord = f"{rng.choice('MNO')}{pick(URLSAFE, 23)}.{pick(URLSAFE, 6)}.{pick(URLSAFE, 38)}"
text("header_bot", "discord.errors.HTTPException: 401 Unauthorized (sent Authorization: Bot {})", discord)
text("mysql_p", "subprocess.CalledProcessError: Command 'mysql -h db.internal -u root -p{} app < dump.sql' returned 1", password())
text("curl_u", "curl: (22) The requested URL returned error: 401 (curl -sS -u deploy:{} https://ci.example.com/api)", password())
text("prose_password", "LoginError: authentication failed for user bob with password {}", password(12))
text("dsn_slash_plus", "OperationalError: could not connect to postgresql://app:{}@db.internal:5432/orders",
     pick(ALNUM, 6) + "/" + pick(ALNUM, 5) + "+" + pick(ALNUM, 6))
text("env_ampersand", "startup failed; environment:\nDB_HOST=db.internal\nDB_PASSWORD={}\n", pick(ALNUM, 7) + "&" + pick(ALNUM, 7))
text("env_semicolon", "environment: APP_ENV=prod DB_PASSWORD={}", pick(ALNUM, 7) + ";" + pick(ALNUM, 7))
text("env_space", "export SMTP_PASSWORD={}", pick(string.ascii_lowercase, 7) + " " + pick(string.ascii_lowercase, 8) + " " + pick(string.ascii_lowercase, 7))
text("env_after_separator", "FEATURE=on&API_TOKEN={}&RETRY=3", pick(ALNUM, 24))
text("env_after_semicolon", "LEVEL=debug;AUTH_SECRET={};X=1", pick(ALNUM, 24))
text("s3_presigned", "botocore GET https://bucket.s3.amazonaws.com/report.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256"
     "&X-Amz-Credential={}%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z"
     "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature={} returned 403",
     "AKIA" + pick("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16), pick(HEX, 64))
text("twilio_positional", 'Traceback (most recent call last):\n  File "/app/notify.py", line 9, in send\n'
     '    client = Client("AC{}", "{}")\ntwilio.base.exceptions.TwilioRestException: HTTP 401', pick(HEX, 32), pick(HEX, 32))
text("datadog_app_key", "datadog.api: 403 Forbidden with DD_API_KEY={} DD_APP_KEY={}", pick(HEX, 32), pick(HEX, 40))
value("sql_identified_by", {"tool": "run_sql", "arguments": {"sql": "CREATE USER reporting IDENTIFIED BY '{}'".replace("{}", (pw := password(16)))}}, pw)
text("sql_identified_by_text", "ProgrammingError: (1064) near \"ALTER USER 'app'@'%' IDENTIFIED WITH mysql_native_password BY '{}'\"", password(16))
text("span_name_query", "GET /password-reset?token={}&lang=en", pick(URLSAFE, 32))

# -- cloud ----------------------------------------------------------------------------------
text("aws_access_key", "NoCredentialsError: key AKIA{} was rejected", pick("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16))
text("aws_secret_key", "aws_secret_access_key = {}", pick(B64, 40))
text("aws_session_token_env", "AWS_SESSION_TOKEN={}", "IQoJb3JpZ2luX2Vj" + pick(B64, 120))
text("gcp_api_key", "google.api_core.exceptions.PermissionDenied: API key AIza{} not valid", pick(URLSAFE, 35))
value("gcp_service_account", {"type": "service_account", "project_id": "demo-project", "private_key_id": (kid := pick(HEX, 40)),
                              "private_key": (gkey := pem("PRIVATE KEY", 6)).replace("\n", "\\n") + "\\n",
                              "client_email": "svc@demo-project.iam.gserviceaccount.com"}, kid, gkey.split("\n")[2])
text("gcp_oauth_token", "refresh failed for ya29.{}", pick(URLSAFE, 120))
text("azure_storage", "azure.core.exceptions.ClientAuthenticationError: DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={};EndpointSuffix=core.windows.net",
     pick(B64, 86) + "==")
text("azure_client_secret", "AZURE_CLIENT_SECRET={}", pick(ALNUM, 3) + "8Q~" + pick(ALNUM + "_~.-", 34))
text("digitalocean", "DigitalOcean API 401 for token dop_v1_{}", pick(HEX, 64))
text("heroku", "heroku api key HRKU-AA{}", pick(URLSAFE, 58))
text("alibaba", "Aliyun InvalidAccessKeyId: LTAI{}", pick(ALNUM, 20))

# -- CI and code hosting ---------------------------------------------------------------------
text("github_pat", "git clone https://x-access-token:ghp_{}@github.com/org/repo.git failed", pick(ALNUM, 36))
text("github_fine_grained", "GITHUB_TOKEN=github_pat_{}", pick(ALNUM, 22) + "_" + pick(ALNUM, 59))
text("github_app_token", "Bad credentials for ghs_{}", pick(ALNUM, 36))
text("gitlab_pat", "gitlab.exceptions.GitlabAuthenticationError: 401 with private token glpat-{}", pick(URLSAFE, 20))
text("circleci", "CIRCLE_TOKEN: CCIPAT_{}_{}", pick(ALNUM, 22), pick(HEX, 40))
text("buildkite", "buildkite agent token bkua_{}", pick(LOWER_ALNUM, 40))
text("terraform", "Error: Invalid token {}.atlasv1.{}", pick(LOWER_ALNUM, 14), pick(URLSAFE, 67))
text("vault", "vault: permission denied for token hvs.{}", pick(URLSAFE, 24))
text("doppler", "DOPPLER_TOKEN=dp.st.prd.{}", pick(ALNUM, 43))
text("pulumi", "pulumi login failed: pul-{}", pick(HEX, 40))

# -- package registries ----------------------------------------------------------------------
text("npm_token", "npm ERR! 403 Forbidden - token npm_{} lacks publish rights", pick(ALNUM, 36))
text("npmrc", "//registry.npmjs.org/:_authToken={}", pick(URLSAFE, 36))
text("pypi_token", "twine upload failed: 403 for pypi-AgEIcHlwaS5vcmc{}", pick(URLSAFE, 70))
text("rubygems", "GEM_HOST_API_KEY=rubygems_{}", pick(HEX, 48))
text("nuget", "dotnet nuget push -k oy2{} failed", pick(LOWER_ALNUM, 43))
text("dockerhub", "docker login -u ci --password-stdin <<< dckr_pat_{}", pick(URLSAFE, 27))
text("artifactory", "X-JFrog-Art-Api: AKCp{}", pick(ALNUM, 69))
text("maven_settings", "<server><id>central</id><username>ci</username><password>{}</password></server>", password(18))

# -- chat, SaaS, payments ---------------------------------------------------------------------
text("slack_bot", "slack_sdk.errors.SlackApiError: invalid_auth for xoxb-{}-{}-{}", pick(string.digits, 12), pick(string.digits, 13), pick(ALNUM, 24))
text("slack_webhook", "POST https://hooks.slack.com/services/T{}/B{}/{} -> 404", pick(UPPER_ALNUM, 10), pick(UPPER_ALNUM, 10), pick(ALNUM, 24))
text("discord_webhook", "POST https://discord.com/api/webhooks/{}/{} -> 401", pick(string.digits, 18), pick(URLSAFE, 68))
text("teams_webhook", "POST https://contoso.webhook.office.com/webhookb2/{}@{}/IncomingWebhook/{}/{} -> 400",
     pick(HEX, 32), pick(HEX, 32), pick(HEX, 32), pick(HEX, 32))
text("telegram", "telegram.error.InvalidToken: {}:AA{}", pick(string.digits, 10), pick(URLSAFE, 33))
text("twilio_key", "twilio api key SK{} revoked", pick(HEX, 32))
text("sendgrid", "python_http_client.exceptions.UnauthorizedError: SG.{}.{}", pick(URLSAFE, 22), pick(URLSAFE, 43))
text("mailgun", "mailgun: 401 with key-{}", pick(ALNUM, 32))
text("mailchimp", "MAILCHIMP_KEY={}", f"{pick(HEX, 32)}-us{rng.randint(1, 20)}")
text("stripe", '    stripe.api_key = "sk_live_{}"', pick(ALNUM, 24))
text("stripe_webhook", "STRIPE_WEBHOOK_SECRET=whsec_{}", pick(ALNUM, 32))
text("openai", '    client = OpenAI(api_key="sk-proj-{}")', pick(URLSAFE, 48))
text("anthropic", "anthropic.AuthenticationError: invalid x-api-key sk-ant-api03-{}", pick(URLSAFE, 93))
text("huggingface", "HF_TOKEN=hf_{}", pick(ALNUM, 34))
text("shopify", "ShopifyAPI: 401 for shpat_{}", pick(HEX, 32))
text("sentry_token", "sentry-cli: invalid token sntrys_{}", pick(ALNUM, 60))
text("newrelic", "NEW_RELIC_API_KEY=NRAK-{}", pick(UPPER_ALNUM, 27))
text("grafana", "grafana api: 401 for glsa_{}_{}", pick(ALNUM, 32), pick(HEX, 8))
text("jwt_bearer", "401 Unauthorized: Authorization: Bearer {}", jwt())
text("jwt_bare", "token expired: {}", jwt())
text("private_key_pem", "ssl.SSLError: bad key\n{}\n", pem())
text("openssh_key", "paramiko.ssh_exception.SSHException: cannot parse\n{}", pem("OPENSSH PRIVATE KEY", 5))
text("age_key", "age: AGE-SECRET-KEY-1{}", pick("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".upper(), 58))
text("card_number", "PaymentError: card {} declined", luhn_complete("4", 16))
card = luhn_complete("51", 16)
text("card_grouped", "PaymentError: card {} declined", " ".join(card[i : i + 4] for i in range(0, 16, 4)))

# -- databases -------------------------------------------------------------------------------
text("mongodb_srv", "pymongo.errors.OperationFailure: mongodb+srv://admin:{}@cluster0.ab1cd.mongodb.net/app", password())
text("redis_url", "redis.exceptions.AuthenticationError: redis://:{}@cache.internal:6379/0", password())
text("jdbc", "SQLException: jdbc:sqlserver://db.internal:1433;databaseName=app;user=sa;password={};encrypt=true", password())
text("adonet", "SqlException: Server=tcp:db.internal,1433;Initial Catalog=app;User ID=app;Password={};", password())
text("pgpassword", "PGPASSWORD={} psql -h db.internal -U app", password())
text("redis_cli", "redis-cli -h cache.internal -a {} PING", password())
text("mysql_long_flag", "mysqldump --user=root --password={} app", password())

# -- argv ------------------------------------------------------------------------------------
argv("argv_flag_equals", ["deploy", f"--api-token={(t1 := pick(ALNUM, 30))}", "--region", "eu-west-1"], t1)
argv("argv_flag_space", ["deploy", "--db-password", (t2 := password()), "--verbose"], t2)
argv("argv_mysql_p", ["mysql", "-h", "db.internal", "-uroot", f"-p{(t3 := password())}", "app"], t3)
argv("argv_curl_u", ["curl", "-u", f"deploy:{(t4 := password())}", "https://ci.example.com"], t4)
argv("argv_env_assignment", ["env", f"SECRET_KEY={(t5 := pick(ALNUM, 40))}", "./manage.py", "migrate"], t5)
argv("argv_sshpass", ["sshpass", "-p", (t6 := password()), "ssh", "deploy@host"], t6)

# -- JSON and headers ------------------------------------------------------------------------
value("json_nested", {"request": {"headers": {"X-Api-Key": (k1 := pick(ALNUM, 32)), "Accept": "application/json"},
                                  "body": {"user": "bob", "password": (k2 := password())}}}, k1, k2)
value("json_list_of_pairs", {"args": ["--token", (k3 := pick(ALNUM, 40)), "--dry-run"]}, k3)
text("json_text", '{{"client_id": "app", "client_secret": "{}", "grant_type": "client_credentials"}}', pick(ALNUM, 40))
text("header_api_key", "HTTP 401\nX-Api-Key: {}\nAccept: */*", pick(ALNUM, 32))
text("header_basic", "Proxy-Authorization: Basic {}", base64.b64encode(f"proxy:{password()}".encode()).decode())
text("header_cookie", "Cookie: sessionid={}; csrftoken={}", pick(LOWER_ALNUM, 32), pick(ALNUM, 32))
text("header_set_cookie", "Set-Cookie: __Host-session={}; Path=/; Secure; HttpOnly", pick(URLSAFE, 43))
text("yaml_config", "database:\n  host: db.internal\n  password: {}\n", password())
text("python_repr", "KeyError in handler with kwargs {{'user': 'bob', 'api_key': '{}'}}", pick(ALNUM, 32))

# -- escaped quotes: secrets inside a string literal (a source line, a JSON string in a log) ----
text("escaped_sql_identified", "    cursor.execute('CREATE USER app IDENTIFIED BY \\'{}\\'')", password())
text("escaped_assignment", '    log.info("connecting with password=\\"{}\\"")', password())
text("escaped_json_in_string", 'payload: "{{\\"user\\": \\"bob\\", \\"api_key\\": \\"{} {}\\"}}"', pick(ALNUM, 20), pick(ALNUM, 12))
text("escaped_single_token", "    config = 'token=\\'{}\\''", pick(ALNUM, 32))
text("escaped_prose", "raise ValueError('password is \\'{}\\'')", password())
text("escaped_authorization", 'request: "{{\\"Authorization\\": \\"Bearer {}\\"}}"', pick(ALNUM, 40))
text("escaped_argv_json", 'spawn: "[\\"deploy\\", \\"--db-password\\", \\"{}\\"]"', password())

# -- non-secrets that must pass through unchanged ----------------------------------------------
clean = [
    ("trace_ids", "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7 trace_flags=01"),
    ("fingerprint", "fingerprint=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    ("git_sha", "deployed commit 3f2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a to production"),
    ("uuid", "request 123e4567-e89b-12d3-a456-426614174000 failed after 3 retries"),
    ("python_traceback", 'Traceback (most recent call last):\n  File "/app/auth/token.py", line 12, in refresh_token\n'
                         '    token = session.get(TOKEN_URL).json()["access_token"]\nKeyError: \'access_token\''),
    ("js_stack", "TypeError: Cannot read properties of undefined (reading 'token')\n"
                 "    at refreshToken (https://app.example.com/static/js/main.3f2a1b.js:1:2345)"),
    ("code_assignment", "    password_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt())"),
    ("code_call", "    token = get_token(user_id=42)"),
    ("prose_token", "failed to refresh token: connection reset by peer"),
    ("prose_password", "password reset email sent to user 42"),
    ("prose_session", "Timeout after 30s waiting for session lock"),
    ("keyerror", "KeyError: 'token'"),
    ("max_tokens", "max_tokens=4096 exceeded for model gpt-4o"),
    ("token_type", "token_type=bearer expires_in=3600"),
    ("url_plain", "GET https://api.example.com/v1/users?page=2&limit=50 returned 500"),
    ("url_docs", "see https://example.com/docs/auth#tokens for details"),
    ("url_port_at", "npm ERR! 404 http://registry.internal:4873/@scope/pkg"),
    ("dsn_no_password", "could not connect to postgres://db.internal:5432/app"),
    ("times_versions", "synced 3 entries from /srv/data at 12:30:01 (version 1.2.3, author=bob)"),
    ("order_number", "order 1234567890123 failed after 3 retries; tokenizer ok"),
    ("cache_key", "cache miss for cache_key=user:42:profile path=/var/lib/app signal: SIGTERM"),
    ("cookie_prose", "the cookie jar is empty"),
    ("authorization_prose", "Authorization header missing"),
    ("placeholder", "set DB_PASSWORD=<your password> in .env"),
    ("env_reference", "password=${DB_PASSWORD} is unresolved"),
    ("http_status", "HTTPError: 503 Service Unavailable for url: https://status.example.com/api/v2/summary.json"),
]

with open(HERE / "corpus.jsonl", "w") as handle:
    for entry in entries:
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
with open(HERE / "clean.jsonl", "w") as handle:
    for category, line in clean:
        handle.write(json.dumps({"category": category, "input": line}) + "\n")
print(f"{len(entries)} secret entries, {len(clean)} clean entries")
