package cart

import (
	"fmt"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Handler serves the cart API.
type Handler struct{ logger *slog.Logger }

// NewHandler returns handlers that log through logger.
func NewHandler(logger *slog.Logger) *Handler { return &Handler{logger: logger} }

// Checkout prices one item of the cart.
func (h *Handler) Checkout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sku := r.URL.Query().Get("sku")
	h.logger.InfoContext(ctx, "loading cart", "sku", sku)
	price, err := parsePrice(ctx, h.logger, r.URL.Query().Get("price"))
	if err != nil {
		span := trace.SpanFromContext(ctx)
		span.RecordError(err, trace.WithStackTrace(true))
		span.SetStatus(codes.Error, err.Error())
		h.logger.ErrorContext(ctx, "checkout failed", "sku", sku, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h.logger.InfoContext(ctx, "cart total computed", "sku", sku, "total", price)
	fmt.Fprintf(w, "%.2f\n", price)
}

// Ship answers the shipping zone of a country.
func (h *Handler) Ship(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	country := r.URL.Query().Get("country")
	h.logger.InfoContext(ctx, "shipping order", "country", country)
	zone, err := zoneFor(ctx, h.logger, country)
	if err != nil {
		span := trace.SpanFromContext(ctx)
		span.RecordError(err, trace.WithStackTrace(true))
		span.SetStatus(codes.Error, err.Error())
		h.logger.ErrorContext(ctx, "shipping failed", "country", country, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, zone)
}

// Health reports that the service is up.
func (h *Handler) Health(w http.ResponseWriter, r *http.Request) {
	h.logger.InfoContext(r.Context(), "health check ok")
	fmt.Fprintln(w, "ok")
}
