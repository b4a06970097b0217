// Package cart holds the shop's cart, pricing and shipping logic and its HTTP handlers.
package cart

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
)

// parsePrice reads a supplier's price. The bug: a decimal comma or a word is not handled.
func parsePrice(ctx context.Context, logger *slog.Logger, raw string) (float64, error) {
	logger.InfoContext(ctx, "parsing price", "raw_price", raw)
	price, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		return 0, fmt.Errorf("parse price %q: %w", raw, err)
	}
	return price, nil
}

// ZoneError says a country has no shipping zone.
type ZoneError struct{ Country string }

func (e *ZoneError) Error() string { return "no shipping zone for country " + e.Country }

var zones = map[string]string{"DE": "eu", "FR": "eu", "US": "na"}

func zoneFor(ctx context.Context, logger *slog.Logger, country string) (string, error) {
	logger.InfoContext(ctx, "looking up shipping zone", "country", country)
	zone, ok := zones[country]
	if !ok {
		return "", &ZoneError{Country: country}
	}
	return zone, nil
}
