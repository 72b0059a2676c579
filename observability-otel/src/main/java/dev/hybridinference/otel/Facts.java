package dev.hybridinference.otel;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceException;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RouteFacts;
import java.net.URI;
import java.time.Duration;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * What the OpenTelemetry listener and the Micrometer binder both read from a call: the server an attempt
 * went to, the error type, the attempts sent, the allow-listed tags. Package-private; stateless apart from
 * a bounded cache of parsed endpoints.
 */
final class Facts {
    /** The GenAI operation of every call: a chat completion. */
    static final String OPERATION = "chat";

    /** The longest tag name accepted in an allow-list. */
    static final int MAX_TAG_NAME = 64;

    /** How many endpoints are kept parsed; beyond this they are parsed on each call (a fleet is smaller). */
    private static final int MAX_CACHED_SERVERS = 1024;

    private static final Pattern TAG_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");

    private static final Map<String, Server> SERVERS = new ConcurrentHashMap<>();

    /** Deployment kinds as attribute values, by ordinal: {@code serverless}, {@code server}, ... */
    private static final String[] KINDS = kinds();

    private Facts() {}

    /**
     * A server an attempt went to.
     *
     * @param address the host, or null when the endpoint is not a URL (a SageMaker endpoint name, say)
     * @param port the port, or -1 when unknown
     */
    record Server(String address, int port) {
        static final Server NONE = new Server(null, -1);

        boolean known() {
            return address != null;
        }
    }

    /**
     * The server of the attempt that answered, or of the last one tried: the last attempt, skipped ones
     * aside, whose endpoint is a URL.
     */
    static Server server(Receipt receipt) {
        if (receipt == null) {
            return Server.NONE;
        }
        List<Attempt> attempts = receipt.attempts();
        for (int i = attempts.size() - 1; i >= 0; i--) {
            Attempt a = attempts.get(i);
            if (a.outcome() != Attempt.Outcome.SKIPPED && !a.endpoint().isEmpty()) {
                Server s = server(a.endpoint());
                if (s.known()) {
                    return s;
                }
            }
        }
        return Server.NONE;
    }

    /** The server a failed attempt went to: the error's endpoint, else its partial receipt's. */
    static Server server(InferenceException error, Receipt receipt) {
        Server s = error.endpoint().map(Facts::server).orElse(Server.NONE);
        return s.known() ? s : server(receipt);
    }

    /** The host and port of an endpoint URL; {@link Server#NONE} for anything else. */
    static Server server(String endpoint) {
        Server cached = SERVERS.get(endpoint);
        if (cached != null) {
            return cached;
        }
        Server s = parse(endpoint);
        if (SERVERS.size() < MAX_CACHED_SERVERS) {
            SERVERS.putIfAbsent(endpoint, s);
        }
        return s;
    }

    private static Server parse(String endpoint) {
        if (endpoint.indexOf("://") < 0) {
            return Server.NONE;
        }
        try {
            URI uri = new URI(endpoint);
            String host = uri.getHost();
            if (host == null || host.isEmpty()) {
                return Server.NONE;
            }
            int port = uri.getPort();
            if (port < 0) {
                String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
                port = scheme.equals("https") ? 443 : scheme.equals("http") ? 80 : -1;
            }
            return new Server(host, port);
        } catch (java.net.URISyntaxException e) {
            return Server.NONE;
        }
    }

    /**
     * What the attributes of a call's metrics depend on: equal keys, equal attribute sets, so that the sets
     * are built once per kind of call rather than on every call.
     *
     * @param provider the provider that answered or was tried last
     * @param requestModel the model the request named, or null
     * @param responseModel the model that answered, or null
     * @param server the server of the answering or last attempt
     * @param kind the receipt's deployment kind, or null without a receipt
     * @param tier the route's tier, or null
     * @param flags {@link #SPILLED}, {@link #FELL_BACK}, {@link #COLD_OBSERVED}, {@link #COST_ESTIMATED}
     * @param errorType the error type of a failure, or null
     * @param tagValues the values of the allow-listed tags, in order, null where a request has none
     */
    record CallKey(
            String provider,
            String requestModel,
            String responseModel,
            Server server,
            DeploymentKind kind,
            String tier,
            int flags,
            String errorType,
            List<String> tagValues) {
        static final int SPILLED = 1;
        static final int FELL_BACK = 2;
        static final int COLD_OBSERVED = 4;
        static final int COST_ESTIMATED = 8;

        boolean has(int flag) {
            return (flags & flag) != 0;
        }
    }

    /**
     * The key of one call's metric attributes.
     *
     * @param receipt the call's receipt (partial for a failure), or null when a failure has none
     * @param responseModel the model that answered; empty for none
     * @param errorType the failure's error type, or null for a success
     */
    static CallKey callKey(
            InferenceListener.Call call,
            String provider,
            String responseModel,
            Server server,
            Receipt receipt,
            String errorType,
            String[] tagNames) {
        int flags = 0;
        DeploymentKind kind = null;
        String tier = null;
        if (receipt != null) {
            RouteFacts route = receipt.routeFacts();
            kind = receipt.deploymentKind();
            tier = route.tier().orElse(null);
            flags = (route.spilledOver() ? CallKey.SPILLED : 0)
                    | (route.fellBack() ? CallKey.FELL_BACK : 0)
                    | (receipt.coldStart().observed() ? CallKey.COLD_OBSERVED : 0)
                    | (receipt.costEstimated() ? CallKey.COST_ESTIMATED : 0);
        }
        return new CallKey(
                provider,
                call.request().model().orElse(null),
                responseModel.isEmpty() ? null : responseModel,
                server,
                kind,
                tier,
                flags,
                errorType,
                tagValues(call, tagNames));
    }

    /** The values of the allow-listed tags in a call's request, in order, null where it has none. */
    static List<String> tagValues(InferenceListener.Call call, String[] tagNames) {
        if (tagNames.length == 0) {
            return List.of();
        }
        Map<String, String> tags = call.request().options().tags();
        String[] values = new String[tagNames.length];
        for (int i = 0; i < tagNames.length; i++) {
            values[i] = tags.get(tagNames[i]);
        }
        return Arrays.asList(values);
    }

    /**
     * A map that keeps at most {@code max} entries and computes the rest on each lookup: attribute sets and
     * meters per kind of call, whose number the allow-list bounds but a misconfigured one might not.
     */
    static final class BoundedCache<K, V> {
        private final Map<K, V> map = new ConcurrentHashMap<>();
        private final int max;
        private final Function<K, V> build;

        BoundedCache(int max, Function<K, V> build) {
            this.max = max;
            this.build = build;
        }

        V get(K key) {
            V v = map.get(key);
            if (v != null) {
                return v;
            }
            v = build.apply(key);
            if (map.size() < max) {
                V raced = map.putIfAbsent(key, v);
                if (raced != null) {
                    return raced;
                }
            }
            return v;
        }
    }

    /**
     * The error type of a failure: the exception's simple class name ({@code ProviderUnavailableException}),
     * a short, fixed set of values.
     */
    static String errorType(Throwable error) {
        String simple = error.getClass().getSimpleName();
        return simple.isEmpty() ? error.getClass().getName() : simple;
    }

    /** The attempts sent to members: every attempt of the receipt but those routing skipped. */
    static int attemptsSent(Receipt receipt) {
        int n = 0;
        for (Attempt a : receipt.attempts()) {
            if (a.outcome() != Attempt.Outcome.SKIPPED) {
                n++;
            }
        }
        return n;
    }

    /** A deployment kind as an attribute value: lower case ({@code serverless}, {@code server}, {@code local}). */
    static String kind(DeploymentKind kind) {
        return KINDS[kind.ordinal()];
    }

    private static String[] kinds() {
        DeploymentKind[] all = DeploymentKind.values();
        String[] out = new String[all.length];
        for (DeploymentKind k : all) {
            out[k.ordinal()] = k.name().toLowerCase(Locale.ROOT);
        }
        return out;
    }

    /** A duration in seconds, to the nanosecond. */
    static double seconds(Duration d) {
        return d.getSeconds() + d.getNano() / 1e9;
    }

    /**
     * Checks an allow-list of request tags: each a name of letters, digits, {@code .}, {@code _} or {@code -}
     * of at most {@value #MAX_TAG_NAME} characters, none twice. Returns them in order.
     *
     * @throws IllegalArgumentException naming the tag at fault and its position
     */
    static List<String> checkTags(Collection<String> tags) {
        Set<String> out = new LinkedHashSet<>();
        int i = 0;
        for (String t : tags) {
            if (t == null || t.length() > MAX_TAG_NAME || !TAG_NAME.matcher(t).matches()) {
                throw new IllegalArgumentException("tag " + i + " (" + describe(t) + "): expected a tag name of"
                        + " letters, digits, '.', '_' or '-', starting with a letter or digit, at most "
                        + MAX_TAG_NAME + " characters");
            }
            if (!out.add(t)) {
                throw new IllegalArgumentException("tag " + i + " (\"" + t + "\"): listed twice");
            }
            i++;
        }
        return List.copyOf(out);
    }

    /**
     * Checks the provider ids of capacity gauges: none blank. Returns them in order, each once.
     *
     * @throws IllegalArgumentException naming the position of a blank id
     */
    static List<String> checkProviders(Collection<String> providerIds) {
        Set<String> out = new LinkedHashSet<>();
        int i = 0;
        for (String id : Objects.requireNonNull(providerIds, "providerIds")) {
            if (id == null || id.isBlank()) {
                throw new IllegalArgumentException("provider " + i + ": expected a provider id, got " + describe(id));
            }
            out.add(id);
            i++;
        }
        return List.copyOf(out);
    }

    private static String describe(String t) {
        if (t == null) {
            return "nothing";
        }
        return "\"" + (t.length() > 32 ? t.substring(0, 32) + "..." : t) + "\"";
    }
}
