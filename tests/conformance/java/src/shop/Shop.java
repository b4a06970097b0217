package shop;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The shop's HTTP API on the JDK's own server; run under the OpenTelemetry Java agent. */
public final class Shop {
  private static final Logger LOG = LoggerFactory.getLogger(Shop.class);

  private Shop() {}

  public static void main(String[] args) throws IOException {
    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.createContext("/checkout", Shop::checkout);
    server.createContext("/ship", Shop::ship);
    server.createContext("/health", exchange -> {
      LOG.info("health check ok");
      respond(exchange, 200, "ok");
    });
    server.setExecutor(Executors.newFixedThreadPool(4));
    server.start();
    Runtime.getRuntime().addShutdownHook(new Thread(() -> server.stop(0)));
    System.out.println("listening " + server.getAddress().getPort());
    System.out.flush();
  }

  static void checkout(HttpExchange exchange) throws IOException {
    Map<String, String> query = query(exchange);
    String sku = query.get("sku");
    LOG.atInfo().addKeyValue("sku", sku).log("loading cart");
    try {
      double total = Pricing.parsePrice(query.get("price"));
      LOG.atInfo().addKeyValue("sku", sku).addKeyValue("total", total).log("cart total computed");
      respond(exchange, 200, Double.toString(total));
    } catch (RuntimeException e) {
      LOG.atError().addKeyValue("sku", sku).setCause(e).log("checkout failed");
      respond(exchange, 500, "internal error");
    }
  }

  static void ship(HttpExchange exchange) throws IOException {
    String country = query(exchange).get("country");
    LOG.atInfo().addKeyValue("country", country).log("shipping order");
    try {
      respond(exchange, 200, Shipping.zoneFor(country));
    } catch (RuntimeException e) {
      LOG.atError().addKeyValue("country", country).setCause(e).log("shipping failed");
      respond(exchange, 500, "internal error");
    }
  }

  private static Map<String, String> query(HttpExchange exchange) {
    Map<String, String> out = new HashMap<>();
    String raw = exchange.getRequestURI().getRawQuery();
    if (raw == null) {
      return out;
    }
    for (String pair : raw.split("&")) {
      String[] kv = pair.split("=", 2);
      out.put(URLDecoder.decode(kv[0], StandardCharsets.UTF_8),
          kv.length > 1 ? URLDecoder.decode(kv[1], StandardCharsets.UTF_8) : "");
    }
    return out;
  }

  private static void respond(HttpExchange exchange, int status, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    exchange.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }
}
