"""Which frames are the application's own code, decided per language from real path segments.

Every rule looks at whole path segments, URL schemes or package-name prefixes, never at
substrings: ``node:internal/`` is a Node runtime URL, but ``…/internal/cart/`` is a Go service's
own package and ``…/react-native-shop/`` an app's own folder.

Three kinds of frames come out:

- **in-app**: the application's code; these make the grouping key and name the culprit.
- **library**: runtimes, standard libraries and third-party packages; they count in the key only
  when a stack has no in-app frame at all.
- **instrumentation**: the telemetry machinery itself (OpenTelemetry SDKs, agents, their
  wrapper/patch helpers). Never part of the key nor the culprit, so that upgrading an agent or
  SDK never splits a group.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["GO_STDLIB_ROOTS", "InAppRules", "go_package", "path_segments"]

#: Directory names that hold third-party or installed code in any language.
_LIBRARY_DIRS = frozenset({
    "site-packages", "dist-packages", "__pypackages__", ".venv", "venv", "virtualenv", ".virtualenvs", ".tox",
    ".nox", "node_modules", "bower_components", "jspm_packages", ".pnpm", ".yarn", "vendor", "gems",
    ".bundle",
})
#: ``lib/python3.12``, ``lib64/python3.9``, ``lib/pypy3.10``: an interpreter's standard library.
_PY_STDLIB_VERSION = re.compile(r"^(?:python|pypy)\d+(?:\.\d+)?t?$", re.I)
#: ``lib/ruby/3.3.0``: Ruby's standard library and default gems.
_VERSION_DIR = re.compile(r"^\d+\.\d+(?:\.\d+)?$")
#: Names a runtime prints instead of a file for frames without source.
_NO_SOURCE = frozenset({
    "native", "[native code]", "native code", "<anonymous>", "anonymous", "<unknown>", "unknown location",
    "<string>", "<stdin>", "<template>", "Native Method", "Unknown Source",
})
#: URL schemes of runtime or browser-extension code.
_RUNTIME_SCHEMES = ("node:", "chrome-extension:", "moz-extension:", "safari-extension:", "safari-web-extension:",
                    "chrome:", "about:", "wasm:", "deno:", "bun:", "ext:")
#: Top-level import-path elements of Go's standard library (and ``cmd``/``vendor`` inside GOROOT).
GO_STDLIB_ROOTS = frozenset({
    "archive", "bufio", "builtin", "bytes", "cmd", "cmp", "compress", "container", "context", "crypto", "database",
    "debug", "embed", "encoding", "errors", "expvar", "flag", "fmt", "go", "hash", "html", "image", "index",
    "internal", "io", "iter", "log", "maps", "math", "mime", "net", "os", "path", "plugin", "reflect", "regexp",
    "runtime", "slices", "sort", "strconv", "strings", "structs", "sync", "syscall", "testing", "text", "time",
    "unicode", "unique", "unsafe", "vendor", "weak",
})
_GO_MODULE_VERSION = re.compile(r"@v\d+\.\d+\.\d+")

#: Dotted module/class/namespace prefixes of runtimes and common frameworks.
_LIBRARY_MODULES: tuple[str, ...] = (
    # JVM
    "java.", "javax.", "jakarta.", "jdk.", "sun.", "com.sun.", "kotlin.", "kotlinx.", "scala.", "groovy.",
    "org.codehaus.groovy.", "org.junit.", "junit.", "org.springframework.", "org.apache.", "io.netty.",
    "org.eclipse.jetty.", "io.undertow.", "org.glassfish.", "org.hibernate.", "com.fasterxml.", "reactor.",
    "io.micrometer.", "ch.qos.logback.", "org.slf4j.", "net.bytebuddy.", "io.grpc.", "okhttp3.", "okio.",
    "io.vertx.", "io.quarkus.", "io.micronaut.", "akka.", "org.jboss.", "com.google.", "io.reactivex.",
    "feign.", "retrofit2.", "com.zaxxer.", "org.postgresql.", "com.mysql.", "org.mockito.",
    # .NET
    "System.", "Microsoft.", "Newtonsoft.", "Npgsql.", "Grpc.", "Polly.", "Serilog.", "NLog.", "Dapper.",
    "MediatR.", "Swashbuckle.", "xunit.", "NUnit.",
    # PHP (OpenTelemetry's Java-style stack traces write namespaces with dots)
    "Symfony.", "Illuminate.", "Laravel.", "GuzzleHttp.", "Slim.", "Monolog.", "Psr.", "Composer.", "Doctrine.",
    "Nyholm.", "PHPUnit.", "PDO.", "PDOStatement.", "mysqli.", "DateTime.", "DateTimeImmutable.",
    "Closure.", "Generator.", "ReflectionMethod.", "ReflectionFunction.", "SplFileObject.",
    # Go runtime (module names of parsed Go frames)
    "runtime.",
    # Android and Kotlin coroutine debug frames (``_COROUTINE._BOUNDARY._``: an async boundary marker)
    "android.", "androidx.", "com.android.", "dalvik.", "libcore.", "_COROUTINE.",
)
#: The telemetry machinery: OpenTelemetry SDKs and agents in every language, and the generic
#: monkey-patching helpers their instrumentations wrap application calls with.
_INSTRUMENTATION_MODULES: tuple[str, ...] = (
    "io.opentelemetry.", "OpenTelemetry.", "opentelemetry.", "go.opentelemetry.io/", "wrapt.",
)
_INSTRUMENTATION_DIRS = frozenset({
    "@opentelemetry", "shimmer", "require-in-the-middle", "import-in-the-middle", "opentelemetry", "wrapt",
    "open-telemetry", "@elastic/apm-node",
})
_INSTRUMENTATION_GEM = re.compile(r"^opentelemetry-[\w\-]+-\d[\w.]*$")
#: Rust crates of the toolchain and common runtime, web, database and error crates. Release builds
#: often print frames without a file, so the crate in the symbol is all there is to judge by.
_RUST_LIBRARY_CRATES = frozenset({
    "std", "core", "alloc", "proc_macro", "test", "panic_unwind", "panic_abort", "backtrace", "gimli", "addr2line",
    "tokio", "futures", "async_std", "async_trait", "smol", "hyper", "http", "h2", "tower", "axum", "warp",
    "rocket", "poem", "tonic", "reqwest", "serde", "serde_json", "serde_yaml", "toml", "sqlx", "diesel", "sea_orm",
    "redis", "mongodb", "tracing", "anyhow", "eyre", "color_eyre", "color_spantrace", "thiserror", "rayon",
    "rayon_core", "crossbeam", "parking_lot", "mio", "bytes", "prost", "tungstenite", "lambda_runtime", "hashbrown",
    "once_cell", "log", "env_logger", "clap", "pin_project", "pin_project_lite",
})
#: Crate-name prefixes of the same families (``tokio_util``, ``futures_util``, ``actix_web``, ``aws_sdk_s3``…).
_RUST_LIBRARY_PREFIXES = ("tokio_", "futures_", "tower_", "axum_", "hyper_", "actix", "sqlx_", "tracing_", "aws_",
                          "rustls", "serde_", "http_", "tonic_", "crossbeam_", "async_", "__rust", "rust_")
#: Apple's frameworks and runtime images (Swift/Objective-C frames name their binary image).
_APPLE_SYSTEM_IMAGES = frozenset({
    "UIKit", "UIKitCore", "Foundation", "CoreFoundation", "SwiftUI", "SwiftUICore", "GraphicsServices",
    "QuartzCore", "CFNetwork", "dyld", "Combine", "AppKit", "CoreData", "WebKit", "AttributeGraph", "FrontBoardServices",
    "BackBoardServices", "CoreGraphics", "Network", "Security", "AVFoundation", "MapKit", "StoreKit", "UIKitMacHelper",
    "HIToolbox", "SwiftData", "Observation", "CoreText", "ImageIO", "CoreLocation",
})
#: Frequent third-party Apple-platform libraries linked as their own images.
_APPLE_LIBRARY_PREFIXES = ("lib", "Alamofire", "RxSwift", "RxCocoa", "Kingfisher", "SDWebImage", "Firebase", "Realm",
                           "GRPC", "NIO", "SwiftProtobuf", "Sentry")
#: C++ namespaces of the standard library, its ABI and common libraries.
_CPP_LIBRARY_NAMESPACES = ("std::", "__gnu_cxx::", "__cxxabiv1::", "boost::", "absl::", "grpc::", "grpc_core::",
                           "google::", "folly::", "fmt::", "nlohmann::", "spdlog::", "Poco::", "Qt", "tbb::")
#: Folders of system headers and libraries, and of package managers' and build tools' dependency trees.
_CPP_LIBRARY_DIRS = frozenset({"include", "vcpkg_installed", ".conan", ".conan2", "_deps", "third_party", "external",
                               "build-deps", "lib", "lib64"})
#: OTP's and Elixir's own applications and common Hex packages: never the application itself.
_BEAM_LIBRARY_APPS = frozenset({
    "elixir", "stdlib", "kernel", "erts", "logger", "mix", "iex", "eex", "ex_unit", "compiler", "crypto", "ssl",
    "inets", "public_key", "asn1", "runtime_tools", "sasl", "tools", "os_mon", "mnesia", "xmerl", "syntax_tools",
    "parsetools", "ssh", "eunit", "common_test", "hex", "phoenix", "phoenix_live_view", "phoenix_html",
    "phoenix_pubsub", "phoenix_ecto", "plug", "plug_cowboy", "plug_crypto", "cowboy", "cowlib", "ranch", "bandit",
    "thousand_island", "websock", "websock_adapter", "ecto", "ecto_sql", "postgrex", "myxql", "db_connection",
    "jason", "poison", "tesla", "finch", "mint", "req", "hackney", "httpoison", "telemetry", "oban", "absinthe",
    "broadway", "gen_stage", "castore", "decimal", "nimble_pool", "nimble_options", "grpc", "gun", "redix",
})


_URL_ORIGIN = re.compile(r"^[a-z][a-z0-9+.\-]*://[^/]*", re.I)
_DRIVE = re.compile(r"^[A-Za-z]:(?=/)")
_SCHEME_OR_ROOT = re.compile(r"^(?:[a-z][a-z0-9+.\-]*:|/|\.|[A-Za-z]:)", re.I)
#: Languages whose built-in rules read the function name, so it must be part of the memo key.
_FUNCTION_RULES = frozenset({"go", "swift", "cpp"})
#: Frames classified per rules object; stacks repeat the same frames, so this is a cheap memo.
_MEMO_SIZE = 4096


def path_segments(filename: str) -> list[str]:
    """The directory and file names of ``filename`` (URL origin, drive letter and query removed)."""
    name = filename.replace("\\", "/").split("?", 1)[0].split("#", 1)[0]
    name = _DRIVE.sub("", _URL_ORIGIN.sub("", name))
    return [part for part in name.split("/") if part not in ("", ".")]


def go_package(function: str) -> str:
    """``github.com/a/b/internal/cart.(*S).Total`` → ``github.com/a/b/internal/cart``; ``main.main`` → ``main``."""
    function = function.removeprefix("created by ").split(" in goroutine ", 1)[0]
    slash = function.rfind("/")
    dot = function.find(".", slash + 1)
    return function[:dot] if dot > 0 else function


def _has_library_dir(segments: Sequence[str]) -> bool:
    for index, part in enumerate(segments[:-1]):
        if part in _LIBRARY_DIRS:
            return True
        following = segments[index + 1]
        if part == "pkg" and following == "mod":  # Go module cache
            return True
        if part.lower() in ("lib", "lib64") and _PY_STDLIB_VERSION.match(following):
            return True
        if part == "lib" and following == "ruby":
            return True
        if part.lower() == "lib" and index and segments[index - 1].lower().startswith("python"):
            return True  # Windows: C:\Python312\Lib\json\decoder.py
        if _GO_MODULE_VERSION.search(part):
            return True  # a Go module at a version (module cache or -trimpath)
    return False


def _is_instrumentation_path(segments: Sequence[str]) -> bool:
    """An instrumentation package inside a dependency folder (never a folder of the app itself)."""
    inside_dependencies = False
    for part in segments[:-1]:
        if inside_dependencies and (part in _INSTRUMENTATION_DIRS or _INSTRUMENTATION_GEM.match(part)):
            return True
        inside_dependencies = inside_dependencies or part in _LIBRARY_DIRS
    return False


def _matches(patterns: Sequence[str], values: Sequence[str]) -> bool:
    return any(p and (value.startswith(p) or p in value) for p in patterns for value in values)


class InAppRules:
    """Decides whether a frame is application code, library code or telemetry instrumentation.

    ``include``/``exclude`` are path or module prefixes (or fragments) from the configuration;
    ``exclude`` wins, and both win over the built-in rules.
    """

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self._memo: dict[tuple[str, str | None, str, str, str], tuple[bool, bool]] = {}

    def is_in_app(self, filename: str, module: str | None = None, language: str = "") -> bool:
        return self.classify(filename, module, language=language)[0]

    def classify(
        self, filename: str, module: str | None = None, function: str = "", language: str = "", package: str = ""
    ) -> tuple[bool, bool]:
        """``(in_app, instrumentation)`` for one frame.

        ``package`` is the unit the runtime names with the frame: a Rust crate, an OTP application.
        """
        key = (filename, module, function if language in _FUNCTION_RULES else "", language, package)
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            found = self._memo[key] = self._classify(filename, module, function, language, package)
        return found

    def _classify(
        self, filename: str, module: str | None, function: str, language: str, package: str
    ) -> tuple[bool, bool]:
        instrumentation = self._instrumentation(filename, module, function, language, package)
        values = [filename] + ([module] if module else []) + ([package] if package else [])
        if _matches(self.exclude, values):
            return False, instrumentation
        if instrumentation:
            return False, True
        if _matches(self.include, values):
            return True, False
        return self._builtin_in_app(filename, module, function, language, package), False

    @staticmethod
    def _instrumentation(filename: str, module: str | None, function: str, language: str, package: str) -> bool:
        if language == "go":
            return go_package(function).startswith("go.opentelemetry.io/")
        if language == "swift":
            return package.startswith(("OpenTelemetry", "URLSessionInstrumentation", "NetworkStatus"))
        if language == "cpp":
            return function.startswith("opentelemetry::") or "libopentelemetry" in package
        if language in ("rust", "elixir"):
            # opentelemetry, opentelemetry_sdk, tracing_opentelemetry (Rust); opentelemetry_phoenix… (OTP apps)
            return "opentelemetry" in package or (module or "").startswith((":otel_", "OpenTelemetry."))
        if module:
            if module.startswith(_INSTRUMENTATION_MODULES):
                return True
            # Java agents inject helper classes into the framework's own package
            # (e.g. ``org.springframework.web.servlet.v6_0.OpenTelemetryHandlerMappingFilter``).
            if module.rsplit(".", 1)[-1].startswith("OpenTelemetry") and module.startswith(_LIBRARY_MODULES):
                return True
        return _is_instrumentation_path(path_segments(filename))

    @staticmethod
    def _builtin_in_app(filename: str, module: str | None, function: str, language: str, package: str) -> bool:
        if language == "go":
            return _go_in_app(filename, function)
        if language == "rust":
            return _rust_in_app(filename, package)
        if language == "elixir":
            return _beam_in_app(filename, module, package)
        if language == "cpp":
            return _cpp_in_app(filename, function, package)
        if language == "swift":
            # The app and its own frameworks are images of their own; Apple's and libraries' are known.
            # "main" is the entry point every app binary has: no code of the developer's own.
            return bool(package) and function != "main" and package not in _APPLE_SYSTEM_IMAGES and not package.startswith(
                _APPLE_LIBRARY_PREFIXES) and not package.endswith(".dylib")
        stripped = filename.strip()
        if stripped in _NO_SOURCE or stripped.startswith(("<frozen ", "<internal:")):
            return False
        if stripped.lower().startswith(_RUNTIME_SCHEMES):
            return False
        if module and (module + ".").startswith(_LIBRARY_MODULES):
            return False
        segments = path_segments(stripped)
        if language == "javascript":
            # Node before v16 printed core modules bare ("internal/timers.js", "events.js").
            if not _SCHEME_OR_ROOT.match(stripped) and (
                stripped.startswith("internal/") or "/" not in stripped.replace("\\", "/")
            ):
                return False
            if any(part in ("webpack", "@vite") for part in segments[:1]) or "webpack/bootstrap" in "/".join(segments[:2]):
                return False
        return not _has_library_dir(segments)


def _go_in_app(filename: str, function: str) -> bool:
    """Go: the main module's packages are in-app; the standard library and versioned modules are not.

    The package path comes from the function name, so the decision is the same for plain and
    ``-trimpath`` builds: ``main`` and import paths outside the standard library are the
    application unless the file lies in a module cache, a ``vendor`` folder or at a module version
    (``…/pkg/mod/x@v1.2.3/…``, ``x@v1.2.3/…``).
    """
    package = go_package(function)
    if package == "main" or package.startswith("main."):
        return True
    if "." not in function and "/" not in function:
        return False  # the runtime's builtins: "panic({0x7c2a40?, …})"
    root = package.split("/", 1)[0]
    if "." not in root and root in GO_STDLIB_ROOTS:
        return False
    return not _has_library_dir(path_segments(filename))


def _rust_in_app(filename: str, crate: str) -> bool:
    """Rust: the toolchain (``/rustc/<hash>/library/…``), ``~/.cargo`` registry/git checkouts, vendored
    crates and the known library crates are not the application; a symbol without a crate and a
    Rust file (``main``, ``start_thread``, ``__libc_start_main``) is the C runtime."""
    if crate in _RUST_LIBRARY_CRATES or crate.startswith(_RUST_LIBRARY_PREFIXES):
        return False
    segments = path_segments(filename)
    if not crate and not filename.endswith(".rs"):
        return False  # a C symbol: the thread start, libc, the unwinder
    if not segments:
        return True
    if segments[0] == "rustc" or ".rustup" in segments or (
        ("cargo" in segments or ".cargo" in segments) and ("registry" in segments or "git" in segments)
    ):
        return False
    return not _has_library_dir(segments)


def _beam_in_app(filename: str, module: str | None, app: str) -> bool:
    """Elixir/Erlang: frames of the application's own OTP application; OTP, Elixir and Hex packages are not.

    Without an application (Erlang's term-form stacks), OTP modules carry a bare file name
    (``gen_server.erl``) while the application's own modules carry their path (``src/worker.erl``).
    """
    segments = path_segments(filename)
    if app:
        return app not in _BEAM_LIBRARY_APPS and "deps" not in segments[:-1]
    if len(segments) < 2:
        return False
    return "deps" not in segments[:-1] and not _has_library_dir(segments)


def _cpp_in_app(filename: str, function: str, binary: str) -> bool:
    """C++: code outside the standard library's and known libraries' namespaces, compiled from a
    file outside system and dependency folders, or into a binary that is not a shared library."""
    if function.startswith(_CPP_LIBRARY_NAMESPACES) or function.startswith("_"):
        return False  # "_start", "__libc_start_main", "__cxa_throw": the C runtime and the ABI
    if binary:
        name = path_segments(binary)[-1] if path_segments(binary) else binary
        return not (name.startswith("lib") and ".so" in name) and not name.endswith(".dylib")
    segments = path_segments(filename)
    if not segments:
        return "::" in function
    return not any(part in _CPP_LIBRARY_DIRS for part in segments[:-1]) and not _has_library_dir(segments)
