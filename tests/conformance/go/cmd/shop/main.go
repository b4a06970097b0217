// Command shop serves the cart API. OpenTelemetry is configured only by the standard OTEL_*
// environment variables (autoexport picks the exporter and protocol).
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"go.opentelemetry.io/contrib/bridges/otelslog"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/log/global"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/acme/shop/internal/cart"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "shop:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	spans, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return err
	}
	tracerProvider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(spans))
	otel.SetTracerProvider(tracerProvider)
	logs, err := autoexport.NewLogExporter(ctx)
	if err != nil {
		return err
	}
	loggerProvider := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(logs)))
	global.SetLoggerProvider(loggerProvider)
	defer func() {
		// Flush what is buffered before exiting: the last request's spans and logs.
		_ = tracerProvider.Shutdown(context.Background())
		_ = loggerProvider.Shutdown(context.Background())
	}()

	handler := cart.NewHandler(otelslog.NewLogger("github.com/acme/shop"))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkout", handler.Checkout)
	mux.HandleFunc("GET /ship", handler.Ship)
	mux.HandleFunc("GET /health", handler.Health)

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	server := &http.Server{Handler: otelhttp.NewHandler(mux, "shop")}
	fmt.Printf("listening %d\n", listener.Addr().(*net.TCPAddr).Port)
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	if err := server.Shutdown(context.Background()); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
