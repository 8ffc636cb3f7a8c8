// A Java service that uses meshreg through its local agent (Consul's HTTP API), JDK only.
// It serves /health, registers itself with an HTTP health check, discovers a peer service, then
// watches that peer with a blocking query and exits once the peer's list changes.
//
//   MESHREG_AGENT=http://127.0.0.1:8500 SERVICE=java-app PEER=peer java App.java
import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class App {
    static final String AGENT = env("MESHREG_AGENT", "http://127.0.0.1:8500");
    static final HttpClient HTTP = HttpClient.newHttpClient();

    static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? fallback : v;
    }

    static HttpResponse<String> call(String method, String path, String body) throws Exception {
        HttpRequest.BodyPublisher pub = body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body);
        HttpRequest req = HttpRequest.newBuilder(URI.create(AGENT + path)).timeout(Duration.ofSeconds(120)).method(method, pub).build();
        HttpResponse<String> res = HTTP.send(req, HttpResponse.BodyHandlers.ofString());
        if (res.statusCode() != 200) throw new IllegalStateException(method + " " + path + ": " + res.statusCode() + " " + res.body());
        return res;
    }

    /** Counts entries of a health answer: each has exactly one "Service" object. */
    static int count(String json) {
        int n = 0;
        Matcher m = Pattern.compile("\"Service\":\\{").matcher(json);
        while (m.find()) n++;
        return n;
    }

    public static void main(String[] args) throws Exception {
        String service = env("SERVICE", "java-app");
        String peer = env("PEER", "peer");
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/health", ex -> {
            ex.sendResponseHeaders(200, 2);
            ex.getResponseBody().write("ok".getBytes());
            ex.close();
        });
        server.start();
        int port = server.getAddress().getPort();
        String id = service + "-1";
        call("PUT", "/v1/agent/service/register", String.format(
            "{\"Name\":\"%s\",\"ID\":\"%s\",\"Address\":\"127.0.0.1\",\"Port\":%d,"
                + "\"Check\":{\"HTTP\":\"http://127.0.0.1:%d/health\",\"Interval\":\"1s\",\"Timeout\":\"1s\"}}",
            service, id, port, port));
        System.out.println("registered " + id + " on port " + port);

        String index = "0";
        String body = "[]";
        while (count(body) == 0) {
            HttpResponse<String> res = call("GET", "/v1/health/service/" + peer + "?passing&wait=10s&index=" + index, null);
            index = res.headers().firstValue("X-Consul-Index").orElse("0");
            body = res.body();
        }
        Matcher p = Pattern.compile("\"Port\":(\\d+)").matcher(body.substring(body.indexOf("\"Service\":")));
        System.out.println("discovered " + peer + " on port " + (p.find() ? p.group(1) : "?"));

        int seen = count(body);
        while (true) {
            HttpResponse<String> res = call("GET", "/v1/health/service/" + peer + "?passing&wait=10s&index=" + index, null);
            index = res.headers().firstValue("X-Consul-Index").orElse("0");
            int now = count(res.body());
            if (now != seen) {
                System.out.println(peer + " changed: " + now + " instances");
                break;
            }
        }
        call("PUT", "/v1/agent/service/deregister/" + id, null);
        System.out.println("deregistered " + id);
        server.stop(0);
    }
}
