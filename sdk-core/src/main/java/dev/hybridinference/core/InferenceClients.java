package dev.hybridinference.core;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.internal.EnvSubstitution;
import dev.hybridinference.core.internal.ProviderRegistry;
import dev.hybridinference.core.internal.RoutingConfigReader;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.ProviderContext;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;

/**
 * Builds clients from a configuration document (YAML or JSON), so that switching or mixing providers is
 * a configuration change:
 *
 * <pre>{@code
 * providers:
 *   main:
 *     type: vllm
 *     baseUrls: ["${VLLM_URL:-http://localhost:8000}"]
 *     pricing: { type: per-instance-hour, perHour: 4.10 }
 * }</pre>
 *
 * <p>With one provider, that provider's client is returned; with several, the top-level {@code default}
 * key names the one to return. Every error names the offending key path.
 */
public final class InferenceClients {
    private static final Set<String> TOP_LEVEL_KEYS = Set.of("providers", "default", "routing");

    private InferenceClients() {}

    /** Loads a YAML or JSON file with the process environment, the system clock and a new ledger. */
    public static InferenceClient fromConfig(Path path) {
        return loader().load(path);
    }

    /** Loads a YAML or JSON document given as text. */
    public static InferenceClient fromConfig(String document) {
        return loader().load(document);
    }

    /** Loads a document given as nested maps and lists (as parsed by any YAML library). */
    public static InferenceClient fromConfig(Map<String, ?> document) {
        return loader().load(document);
    }

    /** A loader whose environment, ledger and clock can be set. */
    public static Loader loader() {
        return new Loader();
    }

    /** Loads configuration documents into clients. Not thread-safe; cheap to create. */
    public static final class Loader {
        private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory())
                .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
                .setNodeFactory(com.fasterxml.jackson.databind.node.JsonNodeFactory.withExactBigDecimals(true));

        private Function<String, String> env = System::getenv;
        private CostLedger ledger;
        private Clock clock = Clock.systemUTC();
        private ClassLoader classLoader = InferenceClients.class.getClassLoader();

        private Loader() {}

        /** Where {@code ${VAR}} references are looked up; the process environment by default. */
        public Loader env(Map<String, String> variables) {
            Map<String, String> copy = Map.copyOf(variables);
            this.env = copy::get;
            return this;
        }

        /** The ledger every provider records into; a new in-memory ledger by default. */
        public Loader ledger(CostLedger ledger) {
            this.ledger = Objects.requireNonNull(ledger, "ledger");
            return this;
        }

        /** The wall clock for receipts and schedules. */
        public Loader clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        /** Where provider factories are looked up. */
        public Loader classLoader(ClassLoader classLoader) {
            this.classLoader = Objects.requireNonNull(classLoader, "classLoader");
            return this;
        }

        /** Loads a YAML or JSON file. */
        public InferenceClient load(Path path) {
            String text;
            try {
                text = Files.readString(path, StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new ConfigurationException(
                        "", "cannot read configuration file " + path + ": " + e.getMessage(), e);
            }
            return load(text);
        }

        /** Loads a YAML or JSON document given as text. */
        public InferenceClient load(String document) {
            JsonNode root;
            try {
                root = YAML.readTree(document);
            } catch (JsonProcessingException e) {
                throw new ConfigurationException(
                        "",
                        "not valid YAML or JSON at line " + e.getLocation().getLineNr() + ", column "
                                + e.getLocation().getColumnNr() + ": " + e.getOriginalMessage(),
                        e);
            }
            return loadTree(root);
        }

        /** Loads a document given as nested maps and lists. */
        public InferenceClient load(Map<String, ?> document) {
            return loadTree(YAML.valueToTree(document));
        }

        private InferenceClient loadTree(JsonNode root) {
            if (root == null || !root.isObject()) {
                throw new ConfigurationException("", "expected a mapping with a 'providers' key at the top level");
            }
            ConfigNode doc = new ConfigNode("", EnvSubstitution.resolve(root.deepCopy(), "", env));
            doc.allowOnly(TOP_LEVEL_KEYS);
            Map<String, ConfigNode> providers = doc.requireObject("providers").entries();
            if (providers.isEmpty()) {
                throw new ConfigurationException("providers", "expected at least one provider");
            }
            String chosen = doc.string("default").orElse(null);
            boolean routed = doc.has("routing");
            if (routed && chosen != null) {
                throw new ConfigurationException("default", "set either default or routing, not both");
            }
            if (chosen == null && providers.size() > 1 && !routed) {
                throw new ConfigurationException(
                        "default",
                        "is required with several providers and no routing section: name one of "
                                + String.join(", ", providers.keySet()));
            }
            if (chosen != null && !providers.containsKey(chosen)) {
                throw new ConfigurationException(
                        "default",
                        "names \"" + chosen + "\", which is not a provider; expected one of "
                                + String.join(", ", providers.keySet()));
            }
            ProviderRegistry registry = ProviderRegistry.load(classLoader);
            CostLedger sharedLedger = ledger != null ? ledger : new CostLedger(clock, java.time.Duration.ofDays(31));
            Map<String, InferenceClient> built = new LinkedHashMap<>();
            try {
                for (Map.Entry<String, ConfigNode> e : providers.entrySet()) {
                    ConfigNode section = e.getValue();
                    String type = section.requireString("type");
                    built.put(
                            e.getKey(),
                            registry.get(type, section.pathOf("type"))
                                    .create(new ProviderContext(e.getKey(), section, sharedLedger, clock)));
                }
            } catch (RuntimeException e) {
                closeAll(new ArrayList<>(built.values()), e);
                throw e;
            }
            if (routed) {
                try {
                    return RoutingConfigReader.read(doc.requireObject("routing"), built, sharedLedger, clock);
                } catch (RuntimeException e) {
                    closeAll(new ArrayList<>(built.values()), e);
                    if (e instanceof IllegalArgumentException) {
                        throw new ConfigurationException("routing", e.getMessage(), e);
                    }
                    throw e;
                }
            }
            String pick =
                    chosen != null ? chosen : providers.keySet().iterator().next();
            List<InferenceClient> unused = new ArrayList<>(built.values());
            unused.remove(built.get(pick));
            closeAll(unused, null);
            return built.get(pick);
        }

        private static void closeAll(List<InferenceClient> clients, RuntimeException primary) {
            for (InferenceClient c : clients) {
                try {
                    c.close();
                } catch (RuntimeException e) {
                    if (primary != null) {
                        primary.addSuppressed(e);
                    }
                }
            }
        }
    }
}
