package dev.hybridinference.core;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.internal.EnvSubstitution;
import dev.hybridinference.core.internal.FactoryRegistry;
import dev.hybridinference.core.internal.RoutingConfigReader;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.InferenceListenerFactory;
import dev.hybridinference.core.spi.InferenceProviderFactory;
import dev.hybridinference.core.spi.ProviderContext;
import dev.hybridinference.core.spi.Secrets;
import dev.hybridinference.core.spi.SharedState;
import dev.hybridinference.core.spi.SharedStateFactory;
import dev.hybridinference.core.spi.TimeSource;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;

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
 * key names the one to return, or a {@code routing:} section combines them into a {@link
 * dev.hybridinference.core.routing.HybridClient}. Every error is a {@link ConfigurationException} that
 * names the offending key path; no other exception leaves the loader.
 *
 * <p>The core reads two keys of every provider section itself, whatever the provider's type, and takes
 * them out before the provider's factory sees the section: {@code capabilities:} ({@code tools}, {@code
 * jsonSchema}, {@code jsonObject}, {@code streaming}, {@code contextLength}) and {@code modelAliases:}
 * (alias to served model name), both read by the composite client, where {@code routing.members.<name>}
 * overrides them. A top-level {@code retry:} section (the keys of {@code routing.retry}) retries a provider
 * used alone: such a provider, or one with {@code modelAliases}, is returned inside a one-member {@code
 * HybridClient} named after it ({@link InferenceClient#unwrap} reaches the provider). With {@code
 * routing:}, {@code retry:} is the composite client's retry policy; giving it there too is refused. One
 * layer retries.
 *
 * <p>The ledger every provider and the routing budgets record into is the returned client's {@link
 * InferenceClient#ledger()}.
 *
 * <p>A top-level {@code state:} section ({@code {type: redis, url: redis://127.0.0.1:6379, prefix: app:}})
 * shares the composite client's budgets, circuits, in-flight slots and keep-warm pings with every instance
 * that loads the same configuration (see {@link dev.hybridinference.core.routing.HybridClient.Builder#sharedState});
 * the factory of its {@code type} ({@link SharedStateFactory}) builds the store, which closes with the client.
 * The core reads {@code slotLease} there itself (how long an in-flight slot is leased; 1s to 24h). It needs a
 * {@code routing:} section.
 *
 * <p>Documents from untrusted hands are safe to load: a document is at most {@link
 * #DEFAULT_MAX_DOCUMENT_SIZE} (1 MiB) unless raised, nests at most {@link ConfigNode#MAX_DEPTH} levels,
 * holds exactly one YAML document and no duplicate keys, and YAML aliases ({@code *name}) are refused
 * rather than expanded, so no alias bomb can grow it. Values of secret-looking keys ({@code apiKey},
 * {@code token}, {@code password}...) and passwords in URLs are registered with {@link Secrets} while
 * loading, so no message quotes them.
 */
public final class InferenceClients {
    // Runs first: a Jackson or OkHttp the SDK cannot work with fails here, with a message naming it.
    static {
        dev.hybridinference.core.internal.LibraryVersions.check();
    }

    /** The largest document {@link Loader} reads unless told otherwise: 1 MiB (1,048,576 characters). */
    public static final int DEFAULT_MAX_DOCUMENT_SIZE = 1 << 20;

    /** The most {@link Loader#maxDocumentSize} can be raised to: 64 MiB. */
    public static final int MAX_DOCUMENT_SIZE_LIMIT = 64 << 20;

    /** The most providers one document may define. */
    public static final int MAX_PROVIDERS = 256;

    private static final Logger LOG = LoggerFactory.getLogger(InferenceClients.class);
    private static final Set<String> TOP_LEVEL_KEYS =
            Set.of("providers", "default", "routing", "retry", "listeners", "ledger", "state");

    /** The keys of the {@code state} section the core reads itself, taken out before its factory sees it. */
    private static final Set<String> STATE_CORE_KEYS = Set.of("slotLease");

    private static final Pattern PROVIDER_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");

    /**
     * The YAML reader. Jackson reads SnakeYAML's event stream without SnakeYAML's composer, so of {@link
     * LoaderOptions} only the code point limit applies; aliases, duplicate keys and nesting are checked
     * here, while the tree is built, where the key path is known. The stream constraints back the depth
     * check up and let strings be as long as the largest document.
     */
    private static final YAMLFactory YAML = YAMLFactory.builder()
            .loaderOptions(loaderOptions())
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxNestingDepth(ConfigNode.MAX_DEPTH + 1)
                    .maxStringLength(MAX_DOCUMENT_SIZE_LIMIT)
                    .build())
            .build();

    /**
     * {@code key: value} (YAML) or {@code "key": "value"} (JSON) anywhere in a document's text, found
     * before parsing so that secret values are registered before a parser error could quote their line.
     */
    private static final Pattern KEY_VALUE = Pattern.compile(
            "(?<![A-Za-z0-9_-])[\"']?([A-Za-z0-9_-]{1,256})[\"']?[ \\t]*:[ \\t]*(\"[^\"\\r\\n]*\"?|'[^'\\r\\n]*'?|[^,}\\]#\\r\\n]+)");

    /** The user information of a URL: {@code https://user:password@host}. */
    private static final Pattern URL_USER_INFO =
            Pattern.compile("(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://([^/?#@\\s\"']+)@");

    /**
     * Words a secret-looking key takes as a mode rather than a secret ({@code credentials: default}). Masking
     * them would turn every later message that contains the word into {@code [REDACTED]}.
     */
    private static final Set<String> MODE_WORDS = Set.of("default", "none", "anonymous");

    private InferenceClients() {}

    private static LoaderOptions loaderOptions() {
        LoaderOptions o = new LoaderOptions();
        o.setCodePointLimit(MAX_DOCUMENT_SIZE_LIMIT);
        return o;
    }

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
        private Function<String, String> env = System::getenv;
        private CostLedger ledger;
        private Clock clock = Clock.systemUTC();
        private TimeSource time;
        private Function<ProviderContext, InferenceClient> providerFactory;
        private final List<InferenceListener> listeners = new ArrayList<>();
        private ClassLoader classLoader = InferenceClients.class.getClassLoader();
        private int maxDocumentSize = DEFAULT_MAX_DOCUMENT_SIZE;

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

        /**
         * The time source every client reads time and sets timers on (see {@link
         * dev.hybridinference.core.routing.HybridClient.Builder#timeSource}); also sets {@link #clock}. The system's by default. Providers get
         * its clock through {@link ProviderContext#clock()}; a {@link #providerFactory} can use the source
         * itself.
         */
        public Loader timeSource(TimeSource time) {
            this.time = Objects.requireNonNull(time, "time");
            this.clock = time.clock();
            return this;
        }

        /**
         * Builds every provider with {@code factory} instead of the factory of its {@code type}: stand-ins
         * that a simulation runs in place of the real platforms (the planner does this), with the same
         * routing, pricing and ledger. Each provider's section still needs a {@code type}; the function
         * gets the section as {@link ProviderContext#config()} and must read every key it keeps, or refuse
         * it with a {@link ConfigurationException} naming it.
         */
        public Loader providerFactory(Function<ProviderContext, InferenceClient> factory) {
            this.providerFactory = Objects.requireNonNull(factory, "factory");
            return this;
        }

        /**
         * Adds a listener to the loaded client (see {@link InferenceListener}), before those of the
         * configuration's {@code listeners} section. It stays yours: the client does not close it. A
         * configuration of one provider and no routing is then loaded as a composite client of one member,
         * the layer that tells listeners.
         */
        public Loader listener(InferenceListener listener) {
            listeners.add(Objects.requireNonNull(listener, "listener"));
            return this;
        }

        /** Where provider factories are looked up. */
        public Loader classLoader(ClassLoader classLoader) {
            this.classLoader = Objects.requireNonNull(classLoader, "classLoader");
            return this;
        }

        /**
         * The largest document read, in characters (bytes for a file); {@link #DEFAULT_MAX_DOCUMENT_SIZE}
         * (1 MiB) by default, at most {@link #MAX_DOCUMENT_SIZE_LIMIT}. A larger document is refused
         * before it is parsed.
         */
        public Loader maxDocumentSize(int characters) {
            if (characters < 1 || characters > MAX_DOCUMENT_SIZE_LIMIT) {
                throw new IllegalArgumentException(
                        "maxDocumentSize must be from 1 to " + MAX_DOCUMENT_SIZE_LIMIT + ", got " + characters);
            }
            this.maxDocumentSize = characters;
            return this;
        }

        /** Loads a YAML or JSON file. */
        public InferenceClient load(Path path) {
            if (path == null) {
                throw new ConfigurationException("", "no configuration file given");
            }
            // Read at most one character past the limit, so that a huge file (or /dev/zero) is refused
            // after reading just that much.
            char[] buf = new char[Math.min(maxDocumentSize + 1, 64 * 1024)];
            StringBuilder text = new StringBuilder();
            try (Reader r = Files.newBufferedReader(path, StandardCharsets.UTF_8)) {
                for (int n; (n = r.read(buf)) >= 0; ) {
                    text.append(buf, 0, n);
                    if (text.length() > maxDocumentSize) {
                        throw tooLarge("the file " + path + " is longer than " + maxDocumentSize + " characters");
                    }
                }
            } catch (IOException | RuntimeException e) {
                if (e instanceof ConfigurationException) {
                    throw (ConfigurationException) e;
                }
                if (e instanceof CharacterCodingException) {
                    throw new ConfigurationException("", "configuration file " + path + " is not UTF-8 text");
                }
                throw new ConfigurationException(
                        "", "cannot read configuration file " + path + ": " + e.getMessage(), e);
            }
            return load(text.toString());
        }

        /** Loads a YAML or JSON document given as text. */
        public InferenceClient load(String document) {
            if (document == null) {
                throw new ConfigurationException("", "no document given");
            }
            if (document.length() > maxDocumentSize) {
                throw tooLarge("the document is " + document.length() + " characters long");
            }
            Map<String, Object> root;
            try {
                registerSecretsInText(document);
                root = parse(document);
            } catch (RuntimeException e) {
                throw unexpected("", e);
            }
            return loadMap(root);
        }

        /** Loads a document given as nested maps and lists. */
        public InferenceClient load(Map<String, ?> document) {
            if (document == null) {
                throw new ConfigurationException("", "no document given");
            }
            return loadMap(document);
        }

        private ConfigurationException tooLarge(String what) {
            return new ConfigurationException(
                    "",
                    what + ", over the limit of " + maxDocumentSize + " characters"
                            + (maxDocumentSize == DEFAULT_MAX_DOCUMENT_SIZE ? " (1 MiB)" : "")
                            + "; raise it with InferenceClients.loader().maxDocumentSize(...)");
        }

        @SuppressWarnings("unchecked")
        private InferenceClient loadMap(Map<String, ?> document) {
            ConfigNode doc;
            // The core's keys of each provider section, taken out before the factories see the sections.
            Map<String, ConfigNode> providerOptions = new LinkedHashMap<>();
            // The core's keys of the state section, taken out before its factory sees it.
            Map<String, Object> stateOptions = new LinkedHashMap<>();
            try {
                Object resolved = EnvSubstitution.resolve(document, "", env);
                // The substituted value is the secret: register it before anything can quote it.
                registerSecrets(resolved, "");
                Map<String, Map<String, Object>> coreKeys = new LinkedHashMap<>();
                resolved = withoutCoreKeys(resolved, coreKeys);
                resolved = withoutStateCoreKeys(resolved, stateOptions);
                doc = ConfigNode.of((Map<String, ?>) resolved);
                for (Map.Entry<String, Map<String, Object>> e : coreKeys.entrySet()) {
                    String path = "providers." + e.getKey();
                    providerOptions.put(e.getKey(), ConfigNode.of(path, e.getValue()));
                }
            } catch (RuntimeException e) {
                throw unexpected("", e);
            }
            try {
                return loadTree(doc, providerOptions, ConfigNode.of("state", stateOptions));
            } catch (RuntimeException e) {
                // Providers and routing turn their own failures into errors at their paths; this is
                // the last line, so that nothing but a ConfigurationException leaves the loader.
                throw unexpected("", e);
            }
        }

        /**
         * The document with the keys the core reads in every provider section ({@link
         * RoutingConfigReader#PROVIDER_KEYS}) moved out of the sections into {@code out}, by provider, so
         * that no provider's factory has to know them. Sections that are not mappings are left for the
         * checks that follow to refuse with their path.
         */
        @SuppressWarnings("unchecked")
        private static Object withoutCoreKeys(Object document, Map<String, Map<String, Object>> out) {
            if (!(document instanceof Map) || !(((Map<?, ?>) document).get("providers") instanceof Map)) {
                return document;
            }
            Map<Object, Object> root = new LinkedHashMap<>((Map<Object, Object>) document);
            Map<Object, Object> providers = new LinkedHashMap<>((Map<Object, Object>) root.get("providers"));
            for (Map.Entry<Object, Object> p : providers.entrySet()) {
                if (!(p.getValue() instanceof Map)) {
                    continue;
                }
                Map<Object, Object> section = new LinkedHashMap<>((Map<Object, Object>) p.getValue());
                Map<String, Object> taken = new LinkedHashMap<>();
                for (String key : RoutingConfigReader.PROVIDER_KEYS) {
                    if (section.containsKey(key)) {
                        taken.put(key, section.remove(key));
                    }
                }
                if (!taken.isEmpty()) {
                    out.put(String.valueOf(p.getKey()), taken);
                    p.setValue(section);
                }
            }
            root.put("providers", providers);
            return root;
        }

        /**
         * The document with the keys of the {@code state} section that the core reads ({@link
         * #STATE_CORE_KEYS}) moved into {@code out}, so that the store's factory need not know them.
         */
        @SuppressWarnings("unchecked")
        private static Object withoutStateCoreKeys(Object document, Map<String, Object> out) {
            if (!(document instanceof Map) || !(((Map<?, ?>) document).get("state") instanceof Map)) {
                return document;
            }
            Map<Object, Object> root = new LinkedHashMap<>((Map<Object, Object>) document);
            Map<Object, Object> state = new LinkedHashMap<>((Map<Object, Object>) root.get("state"));
            for (String key : STATE_CORE_KEYS) {
                if (state.containsKey(key)) {
                    out.put(key, state.remove(key));
                }
            }
            root.put("state", state);
            return root;
        }

        /**
         * The shared state of the {@code state} section, built by the factory of its {@code type}, with the
         * slot lease the section sets (or null); the section applies to a composite client only.
         */
        private SharedState sharedState(ConfigNode section, boolean routed) {
            if (!section.isObject()) {
                throw new ConfigurationException(
                        section.path(),
                        "expected a mapping with a type, such as" + " {type: redis, url: redis://127.0.0.1:6379}");
            }
            if (!routed) {
                throw new ConfigurationException(
                        section.path(),
                        "shared state is the composite client's: it needs a routing section (budgets, circuits,"
                                + " slots and keep-warm pings are what it shares)");
            }
            String type = section.requireString("type");
            SharedState state = FactoryRegistry.sharedStates(classLoader)
                    .get(type, section.pathOf("type"))
                    .create(new SharedStateFactory.Context(section, time != null ? time : TimeSource.system(clock)));
            if (state == null) {
                throw new ConfigurationException(
                        section.path(), "the state factory of type \"" + type + "\" built no store");
            }
            return state;
        }

        private InferenceClient loadTree(
                ConfigNode doc, Map<String, ConfigNode> providerOptions, ConfigNode stateOptions) {
            doc.allowOnly(TOP_LEVEL_KEYS);
            Map<String, ConfigNode> providers = doc.requireObject("providers").entries();
            if (providers.isEmpty()) {
                throw new ConfigurationException("providers", "expected at least one provider");
            }
            if (providers.size() > MAX_PROVIDERS) {
                throw new ConfigurationException(
                        "providers", "expected at most " + MAX_PROVIDERS + " providers, got " + providers.size());
            }
            for (Map.Entry<String, ConfigNode> e : providers.entrySet()) {
                if (!PROVIDER_NAME.matcher(e.getKey()).matches()) {
                    throw new ConfigurationException(
                            e.getValue().path(),
                            "expected a provider name of letters, digits, '.', '_' and '-' (at most 64,"
                                    + " starting with a letter or digit)");
                }
                if (!e.getValue().isObject()) {
                    // Reading any key of it would fail the same way; say so here, with the path.
                    e.getValue().entries();
                }
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
            // Checked before any provider starts, whether or not routing reads them.
            providerOptions.values().forEach(RoutingConfigReader::checkProviderOptions);
            FactoryRegistry<InferenceProviderFactory> registry =
                    providerFactory == null ? FactoryRegistry.providers(classLoader) : null;
            CostLedger sharedLedger = ledger != null ? ledger : new CostLedger(clock, Duration.ofDays(31));
            Map<String, InferenceClient> built = new LinkedHashMap<>();
            for (Map.Entry<String, ConfigNode> e : providers.entrySet()) {
                ConfigNode section = e.getValue();
                try {
                    String type = section.requireString("type");
                    ProviderContext context = new ProviderContext(e.getKey(), section, sharedLedger, clock);
                    InferenceClient client = registry == null
                            ? providerFactory.apply(context)
                            : registry.get(type, section.pathOf("type")).create(context);
                    if (client == null) {
                        throw new ConfigurationException(
                                section.path(), "the factory of type \"" + type + "\" built no client");
                    }
                    built.put(e.getKey(), client);
                } catch (RuntimeException failure) {
                    ConfigurationException error = unexpected(section.path(), failure);
                    closeAll(new ArrayList<>(built.values()), error);
                    throw error;
                }
            }
            ConfigNode retry = doc.object("retry").orElse(null);
            List<InferenceListener> all = new ArrayList<>(listeners);
            List<InferenceListener> configured;
            try {
                configured = configuredListeners(doc, sharedLedger);
                all.addAll(configured);
            } catch (RuntimeException failure) {
                ConfigurationException error = unexpected("listeners", failure);
                closeAll(new ArrayList<>(built.values()), error);
                throw error;
            }
            SharedState state = null;
            Duration slotLease = null;
            if (doc.has("state")) {
                try {
                    slotLease = stateOptions
                            .duration("slotLease", Duration.ofSeconds(1), Duration.ofHours(24))
                            .orElse(null);
                    state = sharedState(doc.object("state").orElseThrow(), routed);
                } catch (RuntimeException failure) {
                    ConfigurationException error = unexpected("state", failure);
                    closeAll(new ArrayList<>(built.values()), error);
                    closeListeners(all, error);
                    throw error;
                }
            }
            if (routed) {
                SharedState shared = state;
                Duration lease = slotLease;
                try {
                    return RoutingConfigReader.read(
                            doc.requireObject("routing"),
                            built,
                            providerOptions,
                            retry,
                            sharedLedger,
                            clock,
                            time,
                            all,
                            configured,
                            hb -> {
                                if (shared != null) {
                                    hb.sharedState(shared).onClose(shared);
                                    if (lease != null) {
                                        hb.sharedSlotLease(lease);
                                    }
                                }
                            });
                } catch (RuntimeException failure) {
                    ConfigurationException error = unexpected("routing", failure);
                    closeAll(new ArrayList<>(built.values()), error);
                    closeListeners(all, error);
                    if (shared != null) {
                        try {
                            shared.close();
                        } catch (RuntimeException e) {
                            error.addSuppressed(e);
                        }
                    }
                    throw error;
                }
            }
            String pick =
                    chosen != null ? chosen : providers.keySet().iterator().next();
            List<InferenceClient> unused = new ArrayList<>(built.values());
            unused.remove(built.get(pick));
            closeAll(unused, null);
            ConfigNode options = providerOptions.get(pick);
            if (retry == null && (options == null || !options.has("modelAliases")) && all.isEmpty()) {
                return built.get(pick);
            }
            // Retries, aliases and listeners take the composite client's path: one member, the provider.
            try {
                return RoutingConfigReader.single(
                        pick, built.get(pick), options, retry, sharedLedger, clock, time, all, configured);
            } catch (RuntimeException failure) {
                ConfigurationException error = unexpected(retry != null ? "retry" : "providers." + pick, failure);
                closeAll(List.of(built.get(pick)), error);
                closeListeners(all, error);
                throw error;
            }
        }

        /**
         * The listeners of the {@code listeners} list and the {@code ledger} section, each built by the
         * factory of its {@code type}; a failure closes those built before it.
         */
        private List<InferenceListener> configuredListeners(ConfigNode doc, CostLedger ledger) {
            List<ConfigNode> sections = new ArrayList<>();
            if (doc.has("listeners")) {
                sections.addAll(doc.list("listeners"));
            }
            doc.object("ledger").ifPresent(sections::add);
            if (sections.isEmpty()) {
                return List.of();
            }
            FactoryRegistry<InferenceListenerFactory> registry = FactoryRegistry.listeners(classLoader);
            TimeSource t = time != null ? time : TimeSource.system(clock);
            List<InferenceListener> out = new ArrayList<>();
            for (ConfigNode section : sections) {
                try {
                    if (!section.isObject()) {
                        throw new ConfigurationException(section.path(), "expected a mapping with a type");
                    }
                    String type = section.requireString("type");
                    InferenceListener l = registry.get(type, section.pathOf("type"))
                            .create(new InferenceListenerFactory.Context(section, ledger, t));
                    if (l == null) {
                        throw new ConfigurationException(
                                section.path(), "the listener factory of type \"" + type + "\" built no listener");
                    }
                    out.add(l);
                } catch (RuntimeException failure) {
                    ConfigurationException error = unexpected(section.path(), failure);
                    closeListeners(out, error);
                    throw error;
                }
            }
            return out;
        }

        /** Closes the listeners the configuration built (those the caller gave stay theirs). */
        private void closeListeners(List<InferenceListener> all, RuntimeException primary) {
            for (InferenceListener l : all) {
                if (l instanceof AutoCloseable && !listeners.contains(l)) {
                    try {
                        ((AutoCloseable) l).close();
                    } catch (Exception e) {
                        primary.addSuppressed(e);
                    }
                }
            }
        }

        private static void closeAll(List<InferenceClient> clients, RuntimeException primary) {
            for (InferenceClient c : clients) {
                try {
                    c.close();
                } catch (RuntimeException e) {
                    if (primary != null) {
                        primary.addSuppressed(Secrets.redact(e));
                    } else {
                        LOG.warn(
                                "closing unused provider {} failed: {}",
                                c.info().id(),
                                Secrets.redact(String.valueOf(e.getMessage())));
                    }
                }
            }
        }
    }

    /**
     * {@code e} as a configuration error at {@code path}: itself when it is one; the message of an
     * illegal argument or state (a builder's check); otherwise what failed, with the exception's class.
     */
    private static ConfigurationException unexpected(String path, RuntimeException e) {
        if (e instanceof ConfigurationException) {
            return (ConfigurationException) e;
        }
        // A builder's own checks say what is wrong in words; a number that failed to parse does not.
        boolean check = (e instanceof IllegalArgumentException && !(e instanceof NumberFormatException))
                || e instanceof IllegalStateException;
        String what = check && e.getMessage() != null
                ? e.getMessage()
                : "could not be loaded (" + e.getClass().getSimpleName()
                        + (e.getMessage() == null ? "" : ": " + e.getMessage()) + ")";
        return new ConfigurationException(path, what, e);
    }

    // ---- reading YAML -------------------------------------------------------------------------

    /** Parses one YAML or JSON document into maps, lists and single values, enforcing the limits. */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> parse(String text) {
        try (YAMLParser p = (YAMLParser) YAML.createParser(text)) {
            JsonToken first = p.nextToken();
            if (first == null) {
                throw new ConfigurationException(
                        "", "the document is empty: expected a mapping with a 'providers' key at the top level");
            }
            Object root = read(p, first, "", 1);
            JsonToken extra = p.nextToken();
            if (extra != null) {
                throw new ConfigurationException(
                        "",
                        "a second document starts at line "
                                + p.currentTokenLocation().getLineNr()
                                + ": expected exactly one document (remove the --- separator and what follows)");
            }
            if (!(root instanceof Map)) {
                throw new ConfigurationException("", "expected a mapping with a 'providers' key at the top level");
            }
            return (Map<String, Object>) root;
        } catch (JsonProcessingException e) {
            throw parseError(e);
        } catch (IOException e) {
            throw new ConfigurationException("", "cannot read the document: " + e.getMessage());
        }
    }

    private static Object read(YAMLParser p, JsonToken t, String path, int depth) throws IOException {
        if (t == null) {
            throw new ConfigurationException(path, "the document ends early: expected a value");
        }
        if (p.isCurrentAlias()) {
            throw new ConfigurationException(
                    path,
                    "YAML aliases (*" + p.getText() + ") are not supported: write the value out,"
                            + " or share it through an environment variable (${NAME})");
        }
        switch (t) {
            case START_OBJECT: {
                requireDepth(path, depth);
                Map<String, Object> map = new LinkedHashMap<>();
                for (JsonToken k = p.nextToken(); k != JsonToken.END_OBJECT; k = p.nextToken()) {
                    if (k != JsonToken.FIELD_NAME) {
                        throw new ConfigurationException(path, "the document ends early: expected a key");
                    }
                    String key = p.currentName();
                    if (key.length() > ConfigNode.MAX_KEY_LENGTH) {
                        throw new ConfigurationException(
                                join(path, key.substring(0, 32) + "..."),
                                "key longer than " + ConfigNode.MAX_KEY_LENGTH + " characters");
                    }
                    String childPath = join(path, key);
                    if (map.containsKey(key)) {
                        throw new ConfigurationException(
                                childPath,
                                "duplicate key (line "
                                        + p.currentTokenLocation().getLineNr()
                                        + "): each key may appear once in a mapping");
                    }
                    map.put(key, read(p, p.nextToken(), childPath, depth + 1));
                }
                return map;
            }
            case START_ARRAY: {
                requireDepth(path, depth);
                List<Object> list = new ArrayList<>();
                for (JsonToken item = p.nextToken(); item != JsonToken.END_ARRAY; item = p.nextToken()) {
                    list.add(read(p, item, path + "[" + list.size() + "]", depth + 1));
                }
                return list;
            }
            case VALUE_STRING:
                return p.getText();
            case VALUE_NUMBER_INT:
            case VALUE_NUMBER_FLOAT:
                return number(p, t);
            case VALUE_TRUE:
                return Boolean.TRUE;
            case VALUE_FALSE:
                return Boolean.FALSE;
            case VALUE_NULL:
                return null;
            default:
                throw new ConfigurationException(
                        path,
                        "unsupported value (such as !!binary): expected a mapping, a list, a string, a number,"
                                + " true/false or nothing");
        }
    }

    private static void requireDepth(String path, int depth) {
        if (depth > ConfigNode.MAX_DEPTH) {
            throw new ConfigurationException(
                    path, "nested deeper than " + ConfigNode.MAX_DEPTH + " levels of mappings and lists");
        }
    }

    /**
     * A number token as a {@link java.math.BigInteger} or {@link java.math.BigDecimal}; what those cannot
     * hold ({@code .inf}, {@code .nan}, a hundred digits) stays text, which every numeric getter refuses
     * with the key path.
     */
    private static Object number(YAMLParser p, JsonToken t) throws IOException {
        String text = p.getText();
        if (text.length() > 100) {
            return text;
        }
        try {
            return t == JsonToken.VALUE_NUMBER_INT ? p.getBigIntegerValue() : p.getDecimalValue();
        } catch (JsonProcessingException | NumberFormatException e) {
            return text;
        }
    }

    private static String join(String path, String key) {
        return path.isEmpty() ? key : path + "." + key;
    }

    /**
     * A syntax error with its line and column and SnakeYAML's description of the problem, but without the
     * quoted source line the parser's own message carries (it may hold a secret), and without the
     * parser's exception as the cause for the same reason.
     */
    private static ConfigurationException parseError(JsonProcessingException e) {
        String what = e.getOriginalMessage();
        int line = -1;
        int column = -1;
        Throwable c = e;
        for (int i = 0; c != null && i < 8; i++, c = c.getCause()) {
            if (c instanceof MarkedYAMLException) {
                MarkedYAMLException m = (MarkedYAMLException) c;
                Mark mark = m.getProblemMark() != null ? m.getProblemMark() : m.getContextMark();
                if (mark != null) {
                    line = mark.getLine() + 1;
                    column = mark.getColumn() + 1;
                }
                what = m.getContext() == null ? m.getProblem() : m.getContext() + ": " + m.getProblem();
                break;
            }
        }
        if (line < 0) {
            JsonLocation loc = e.getLocation();
            if (loc != null && loc.getLineNr() > 0) {
                line = loc.getLineNr();
                column = loc.getColumnNr();
            }
        }
        if (what == null) {
            what = e.getClass().getSimpleName();
        } else if (what.contains("AliasEvent")) {
            what = "a YAML alias used as a key; aliases are not supported";
        } else if (what.contains("SequenceStartEvent") || what.contains("MappingStartEvent")) {
            what = "a list or mapping used as a key; keys must be single values";
        }
        return new ConfigurationException(
                "",
                "not valid YAML or JSON" + (line > 0 ? " at line " + line + ", column " + column : "") + ": " + what);
    }

    // ---- secrets ------------------------------------------------------------------------------

    /**
     * Registers what looks secret in a document's raw text: the values of secret-looking keys and the
     * user information of URLs. A parser error may quote any line, and it comes before the tree exists.
     */
    private static void registerSecretsInText(String text) {
        Matcher m = KEY_VALUE.matcher(text);
        while (m.find()) {
            if (ConfigNode.isSecretKey(m.group(1))) {
                String v = m.group(2).trim();
                // A flow mapping under a secret-looking key ("credentials: {profile: dev}") is judged by its
                // own keys, which this pattern meets too; of a flow list, the first item is taken.
                if (v.startsWith("{")) {
                    continue;
                }
                if (v.startsWith("[")) {
                    v = v.substring(1).trim();
                }
                if (v.length() >= 2 && (v.charAt(0) == '"' || v.charAt(0) == '\'')) {
                    v = v.endsWith(v.substring(0, 1)) ? v.substring(1, v.length() - 1) : v.substring(1);
                }
                if (!v.contains("${") && !MODE_WORDS.contains(v)) {
                    Secrets.register(v);
                    // A line with a syntax error may carry junk after the key ("sk-123 {"); register
                    // the key alone too, when it is long enough not to be an ordinary word.
                    String first = v.split("\\s", 2)[0];
                    if (first.length() >= 8 && !first.equals(v)) {
                        Secrets.register(first);
                    }
                }
            }
        }
        registerUrlCredentials(text);
    }

    /**
     * Registers every single value under a secret-looking key, and the user information of every URL
     * anywhere; a mapping under a secret-looking key is judged by its own keys.
     */
    private static void registerSecrets(Object node, String key) {
        if (node instanceof Map) {
            for (Map.Entry<?, ?> e : ((Map<?, ?>) node).entrySet()) {
                registerSecrets(e.getValue(), String.valueOf(e.getKey()));
            }
        } else if (node instanceof Collection) {
            for (Object item : (Collection<?>) node) {
                registerSecrets(item, key);
            }
        } else if (node instanceof Object[]) {
            for (Object item : (Object[]) node) {
                registerSecrets(item, key);
            }
        } else if (node != null) {
            String text = node.toString();
            if (ConfigNode.isSecretKey(key) && !MODE_WORDS.contains(text.trim())) {
                Secrets.register(text);
            }
            registerUrlCredentials(text);
        }
    }

    private static void registerUrlCredentials(String text) {
        if (!text.contains("@")) {
            return;
        }
        Matcher m = URL_USER_INFO.matcher(text);
        while (m.find()) {
            String userInfo = m.group(1);
            int colon = userInfo.indexOf(':');
            Secrets.register(userInfo);
            if (colon >= 0) {
                Secrets.register(userInfo.substring(colon + 1));
            }
        }
    }
}
