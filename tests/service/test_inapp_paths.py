"""In-app decisions and key paths, frame by frame: whole path segments and package names, never substrings."""

from __future__ import annotations

import pytest

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.paths import project_relative

RULES = InAppRules()

# (language, filename, module, function) → (in_app, instrumentation)
FRAMES = [
    ("python", "/home/dev/src/alternative-pricing/app.py", None, "quote", (True, False)),
    ("python", "/srv/app/.venv/lib/python3.12/site-packages/flask/app.py", "flask.app", "wsgi_app", (False, False)),
    ("python", "/usr/lib/python3.13/json/decoder.py", None, "raw_decode", (False, False)),
    ("python", "C:\\Python312\\Lib\\json\\decoder.py", None, "raw_decode", (False, False)),
    ("python", "/srv/app/.venv/lib/python3.12/site-packages/opentelemetry/sdk/trace/__init__.py",
     "opentelemetry.sdk.trace", "record_exception", (False, True)),
    ("python", "/srv/app/venv/lib/python3.11/site-packages/wrapt/wrappers.py", "wrapt.wrappers", "__call__", (False, True)),
    ("python", "/srv/telemetry/opentelemetry_setup.py", None, "configure", (True, False)),
    ("python", "<frozen importlib._bootstrap>", None, "_call_with_frames_removed", (False, False)),
    ("javascript", "node:internal/process/task_queues", None, "processTicksAndRejections", (False, False)),
    ("javascript", "internal/process/task_queues.js", None, "processTicksAndRejections", (False, False)),
    ("javascript", "events.js", None, "emit", (False, False)),
    ("javascript", "/srv/api/internal/handlers.js", None, "getCart", (True, False)),
    ("javascript", "/home/ci/react-native-shop/server/orders.js", None, "list", (True, False)),
    ("javascript", "/app/node_modules/.pnpm/express@4.21.1/node_modules/express/lib/router/layer.js", None,
     "handle", (False, False)),
    ("javascript", "/app/node_modules/shimmer/index.js", None, "wrapped", (False, True)),
    ("javascript", "/app/node_modules/@opentelemetry/instrumentation-http/build/src/http.js", None, "outgoing", (False, True)),
    ("javascript", "chrome-extension://abcdef/content.js", None, "inject", (False, False)),
    ("javascript", "webpack:///./node_modules/react-dom/cjs/react-dom.development.js", None, "render", (False, False)),
    ("javascript", "webpack-internal:///./src/cart.js", None, "renderCart", (True, False)),
    ("go", "/home/dev/shop/internal/cart/cart.go", None, "example.com/shop/internal/cart.Total", (True, False)),
    ("go", "shop/internal/cart/cart.go", None, "shop/internal/cart.Total", (True, False)),  # dotless module, -trimpath
    ("go", "net/http/server.go", None, "net/http.(*conn).serve", (False, False)),
    ("go", "/usr/lib/go-1.22/src/internal/poll/fd_unix.go", None, "internal/poll.(*FD).Read", (False, False)),
    ("go", "github.com/jackc/pgx/v5@v5.7.1/conn.go", None, "github.com/jackc/pgx/v5.(*Conn).Query", (False, False)),
    ("go", "/go/pkg/mod/github.com/jackc/pgx/v5@v5.7.1/conn.go", None, "github.com/jackc/pgx/v5.(*Conn).Query", (False, False)),
    ("go", "/src/shop/vendor/github.com/jackc/pgx/v5/conn.go", None, "github.com/jackc/pgx/v5.(*Conn).Query", (False, False)),
    ("go", "go.opentelemetry.io/otel/sdk@v1.34.0/trace/span.go", None, "go.opentelemetry.io/otel/sdk/trace.recordStackTrace",
     (False, True)),
    ("go", "/build/inventory/cmd/inventoryd/main.go", None, "main.main", (True, False)),
    ("java", "CartService.java", "com.acme.shop.cart.CartService", "total", (True, False)),
    ("java", "Thread.java", "java.lang.Thread", "run", (False, False)),
    ("java", "ContextPropagatingRunnable.java", "io.opentelemetry.javaagent.bootstrap.executors.ContextPropagatingRunnable",
     "run", (False, True)),
    ("java", "OpenTelemetryHandlerMappingFilter.java", "org.springframework.web.servlet.v6_0.OpenTelemetryHandlerMappingFilter",
     "doFilter", (False, True)),
    ("java", "OpenTelemetryConfig.java", "com.acme.shop.OpenTelemetryConfig", "init", (True, False)),
    ("ruby", "/usr/local/bundle/gems/actionpack-7.2.1/lib/abstract_controller/base.rb", None, "process", (False, False)),
    ("ruby", "/home/kim/ruby/shop/lib/cart.rb", None, "total", (True, False)),
    ("ruby", "/usr/local/lib/ruby/3.4.0/monitor.rb", None, "synchronize", (False, False)),
    ("ruby", "<internal:kernel>", None, "loop", (False, False)),
    ("php", "/var/www/app/vendor/slim/slim/Slim/App.php", None, "handle", (False, False)),
    ("php", "/var/www/app/src/Orders.php", None, "load", (True, False)),
]


@pytest.mark.parametrize("language,filename,module,function,expected", FRAMES,
                         ids=[f"{f[0]}:{f[1][-40:]}" for f in FRAMES])
def test_in_app_classification(language, filename, module, function, expected):
    """Each frame is application, library or instrumentation code by segment and package rules."""
    assert RULES.classify(filename, module, function, language) == expected


# (language, filename, module, function, package: crate / OTP application / binary image) → (in_app, instrumentation)
PACKAGED_FRAMES = [
    ("rust", "./src/cart.rs", "shop", "shop::cart::Cart::total", "shop", (True, False)),
    ("rust", "", "shop", "shop::cart::Cart::total", "shop", (True, False)),  # release build: no file
    ("rust", "/rustc/90c5418/library/core/src/option.rs", "core", "core::option::unwrap_failed", "core", (False, False)),
    ("rust", "/usr/local/cargo/registry/src/index.crates.io-6f17d22bba15001f/rust_decimal-1.36.0/src/ops.rs",
     "rust_decimal", "rust_decimal::ops::add", "rust_decimal", (False, False)),
    ("rust", "", "tokio", "tokio::runtime::task::core::Core<T,S>::poll", "tokio", (False, False)),
    ("rust", "", None, "start_thread", "", (False, False)),
    ("rust", "", "tracing_opentelemetry", "tracing_opentelemetry::layer::on_event", "tracing_opentelemetry", (False, True)),
    ("elixir", "lib/shop/cart.ex", "Shop.Cart", "total/1", "shop", (True, False)),
    ("elixir", "lib/enum.ex", "Enum", "map/2", "elixir", (False, False)),
    ("elixir", "gen_server.erl", ":gen_server", "try_handle_call/4", "stdlib", (False, False)),
    ("elixir", "lib/phoenix/router.ex", "Phoenix.Router", "__call__/5", "phoenix", (False, False)),
    ("elixir", "lib/opentelemetry_phoenix.ex", "OpentelemetryPhoenix", "handle_endpoint_start/4", "opentelemetry_phoenix",
     (False, True)),
    ("elixir", "/build/shop/apps/shop/src/shop_codec.erl", ":shop_codec", "decode/1", "", (True, False)),
    ("elixir", "gen_server.erl", ":gen_server", "call/3", "", (False, False)),
    ("swift", "", "ShopApp", "$s7ShopApp15CheckoutServiceC5totalySdKF", "ShopApp", (True, False)),
    ("swift", "", "ShopApp", "main", "ShopApp", (False, False)),
    ("swift", "", "UIKitCore", "-[UIApplication _run]", "UIKitCore", (False, False)),
    ("swift", "", "libdispatch.dylib", "_dispatch_main_queue_drain", "libdispatch.dylib", (False, False)),
    ("swift", "", "OpenTelemetrySdk", "$s16OpenTelemetrySdk7SpanSdkC3endyyF", "OpenTelemetrySdk", (False, True)),
    ("cpp", "/src/shop/cart.cpp", "shop::Cart", "shop::Cart::total() const", "", (True, False)),
    ("cpp", "/usr/include/c++/13/bits/std_function.h", "std", "std::_Function_handler<…>::_M_invoke()", "", (False, False)),
    ("cpp", "/home/ci/shop/build/_deps/json-src/include/nlohmann/json.hpp", "json", "json::at()", "", (False, False)),
    ("cpp", "/usr/local/bin/shopd", "shop::Cart", "shop::Cart::total() const", "/usr/local/bin/shopd", (True, False)),
    ("cpp", "/lib/x86_64-linux-gnu/libc.so.6", "(global)", "__libc_start_main", "/lib/x86_64-linux-gnu/libc.so.6",
     (False, False)),
    ("cpp", "/opt/otel/include/opentelemetry/trace/scope.h", "opentelemetry::v1::trace::Scope",
     "opentelemetry::v1::trace::Scope::~Scope()", "", (False, True)),
    ("java", "CoroutineDebugging.kt", "_COROUTINE._BOUNDARY", "_", "", (False, False)),
    ("java", "Handler.java", "android.os.Handler", "dispatchMessage", "", (False, False)),
    ("go", "/usr/local/go/src/runtime/panic.go", None, "panic", "", (False, False)),
]


@pytest.mark.parametrize("language,filename,module,function,package,expected", PACKAGED_FRAMES,
                         ids=[f"{f[0]}:{f[3][-40:]}" for f in PACKAGED_FRAMES])
def test_in_app_classification_by_package(language, filename, module, function, package, expected):
    """Rust crates, OTP applications and Apple binary images decide what is the application's own code."""
    assert RULES.classify(filename, module, function, language, package) == expected


def test_configured_include_and_exclude_win_over_built_in_rules():
    """Configured prefixes override the defaults; exclude wins over include; instrumentation stays out."""
    rules = InAppRules(include=["/srv/app/.venv/lib/python3.12/site-packages/shop/"], exclude=["/srv/app/generated/"])
    assert rules.classify("/srv/app/.venv/lib/python3.12/site-packages/shop/cart.py", "shop.cart", "total", "python") == (True, False)
    assert rules.classify("/srv/app/generated/pb.py", None, "decode", "python") == (False, False)
    assert rules.classify("/srv/app/.venv/lib/python3.12/site-packages/opentelemetry/trace/__init__.py",
                          "opentelemetry.trace", "use_span", "python") == (False, True)
    by_package = InAppRules(include=["acme_money"], exclude=["shop_generated"])
    assert by_package.classify("", "acme_money", "acme_money::round", "rust", "acme_money") == (True, False)
    assert by_package.classify("lib/shop_generated/pb.ex", "ShopGenerated.Pb", "decode/1", "elixir",
                               "shop_generated") == (False, False)


SAME_FILE = [
    "/srv/shop/releases/2026.11.28-1/shop/cart.py",
    "/srv/shop/releases/2026.11.30-2/shop/cart.py",
    "/srv/shop/current/shop/cart.py",
    "/var/lib/docker/overlay2/4f1c0e2b9a7d/merged/app/shop/cart.py",
    "/proc/1/root/app/shop/cart.py",
    "/app/shop/cart.py",
    "/home/ci/builds/3f9a1c2b7d/shop/cart.py",
    "C:\\deploy\\releases\\v12\\shop\\cart.py",
]


def test_release_container_and_symlink_paths_normalise_to_one_project_path():
    """Release folders, `current`, container layers, hash folders and drive letters vanish from key paths."""
    assert {project_relative(path) for path in SAME_FILE} == {"shop/cart.py"}


@pytest.mark.parametrize("path,expected", [
    ("/app/node_modules/.pnpm/express@4.21.1/node_modules/express/lib/router/layer.js", "node_modules/express/lib/router/layer.js"),
    ("/home/u/go/pkg/mod/github.com/jackc/pgx/v5@v5.7.1/conn.go", "pkg/mod/github.com/jackc/pgx/v5/conn.go"),
    ("/usr/local/bundle/gems/actionpack-7.2.1/lib/abstract_controller/base.rb", "gems/actionpack/lib/abstract_controller/base.rb"),
    ("/home/a/.virtualenvs/shop-Xq3v/lib/python3.12/site-packages/flask/app.py", "site-packages/flask/app.py"),
    ("/opt/pyenv/versions/3.12.7/lib/python3.12/json/decoder.py", "stdlib/json/decoder.py"),
    ("https://shop.example.com:8443/assets/app.3f9a1c2b.js?v=7#x", "assets/app.js"),
    ("/home/alice/shop/app/orders.py", "shop/app/orders.py"),
    ("/srv/api/v1/handlers.py", "api/v1/handlers.py"),  # a short version-like folder of the code itself stays
])
def test_library_and_url_paths(path, expected):
    """Dependency paths keep the package's own path without store or version parts; code folders stay."""
    assert project_relative(path) == expected
