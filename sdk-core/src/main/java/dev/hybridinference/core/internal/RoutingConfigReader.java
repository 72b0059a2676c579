package dev.hybridinference.core.internal;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceListener;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.routing.Budget;
import dev.hybridinference.core.routing.CircuitBreakerConfig;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.routing.MemberOptions;
import dev.hybridinference.core.routing.RetryPolicy;
import dev.hybridinference.core.routing.Route;
import dev.hybridinference.core.routing.StandardRoutingPolicy;
import dev.hybridinference.core.routing.TierRule;
import dev.hybridinference.core.spi.ConfigNode;
import dev.hybridinference.core.spi.TimeSource;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Builds a {@link HybridClient} from the {@code routing:} section of a configuration, or around a single
 * provider given {@code retry:} or {@code modelAliases}. Internal: the format is documented in the
 * README.
 *
 * <p>A member's options are read in two layers, the later winning: the provider's own section ({@code
 * capabilities:}, {@code modelAliases:}, which the loader takes out before the provider's factory sees
 * the section), then {@code routing.members.<name>}. What both leave unset comes from the provider's
 * {@link dev.hybridinference.core.ClientInfo} when the client is built.
 *
 * <p>Each number has a range that its consumer can work with; the reasons are given beside the limits
 * below. A value outside its range is refused with the key path and the range.
 */
public final class RoutingConfigReader {
    private static final Set<String> KEYS = Set.of(
            "id",
            "members",
            "tiers",
            "rules",
            "defaultTier",
            "spillover",
            "costAware",
            "retry",
            "circuitBreaker",
            "budgets");
    private static final Set<String> MEMBER_KEYS = Set.of(
            "maxInFlight",
            "maxWaiting",
            "contextLength",
            "idleTimeout",
            "coldStartLatency",
            "keepWarmEvery",
            "typicalOutputTokens",
            "capabilities",
            "modelAliases");

    /**
     * The keys the core reads in every provider's section, whatever its type; the loader takes them out
     * before the provider's factory sees the section.
     */
    public static final Set<String> PROVIDER_KEYS = Set.of("capabilities", "modelAliases");

    private static final Set<String> CAPABILITY_KEYS =
            Set.of("tools", "jsonSchema", "jsonObject", "streaming", "contextLength");
    private static final Set<String> CIRCUIT_KEYS = Set.of(
            "failureThreshold",
            "cooldown",
            "failureRateThreshold",
            "slowCallRateThreshold",
            "slowCallDuration",
            "windowCalls",
            "windowDuration",
            "minimumCalls");
    private static final Set<String> RETRY_KEYS = Set.of(
            "maxAttempts", "initialBackoff", "maxBackoff", "multiplier", "jitter", "maxRetryAfter", "maxTotalWait");

    /** Aliases one provider or member may map. */
    static final int MAX_ALIASES = 1_000;

    /** Every keep-warm ping is a billed call: more often than this is a mistake, not a setting. */
    static final Duration MIN_KEEP_WARM = Duration.ofSeconds(10);

    /** Budget windows are aligned to whole milliseconds of the epoch, and shorter windows are noise. */
    static final Duration MIN_BUDGET_PERIOD = Duration.ofSeconds(1);

    /** A year (leap years included) is the longest budget period. */
    static final Duration MAX_BUDGET_PERIOD = Duration.ofDays(366);

    /** No single wait (backoff, Retry-After, slot wait) is worth more than an hour of a caller's time. */
    static final Duration MAX_WAIT = Duration.ofHours(1);

    /** The longest any idle timeout, cooldown or total wait may be. */
    static final Duration MAX_LONG = Duration.ofHours(24);

    static final int MAX_IN_FLIGHT = 1_000_000;
    static final int MAX_CONTEXT = 100_000_000;
    static final int MAX_ATTEMPTS = 100;
    static final int MAX_FAILURE_THRESHOLD = 10_000;
    static final BigDecimal MAX_WAITING = new BigDecimal(1_000_000);
    static final BigDecimal MAX_MULTIPLIER = new BigDecimal(100);
    static final int MAX_TIERS = 100;
    static final int MAX_RULES = 1_000;
    static final int MAX_BUDGETS = 100;

    private RoutingConfigReader() {}

    /**
     * Builds the composite client over {@code providers}, with no provider-level options and no top-level
     * retry section.
     */
    public static HybridClient read(
            ConfigNode routing, Map<String, InferenceClient> providers, CostLedger ledger, Clock clock) {
        return read(routing, providers, Map.of(), null, ledger, clock, null, List.of(), List.of());
    }

    /**
     * Builds the composite client over {@code providers}.
     *
     * @param routing the {@code routing} section
     * @param providers the built providers, by id, in document order
     * @param providerOptions by provider id, a node holding the core's keys of its section ({@link
     *     #PROVIDER_KEYS}), at the section's path; absent for a provider that has none
     * @param retry the top-level {@code retry} section, or null; refused together with {@code
     *     routing.retry}
     * @param ledger the ledger shared by every provider, the composite and its budgets
     * @param clock the wall clock of receipts and budgets
     * @param time the time source of the composite client (see {@link HybridClient.Builder#timeSource}), or
     *     null for the system's with {@code clock}
     * @param listeners the composite client's listeners, in order
     * @param owned those of {@code listeners} the client owns (built from configuration): the ones that are
     *     {@link AutoCloseable} close with it; the others stay their owner's
     */
    public static HybridClient read(
            ConfigNode routing,
            Map<String, InferenceClient> providers,
            Map<String, ConfigNode> providerOptions,
            ConfigNode retry,
            CostLedger ledger,
            Clock clock,
            TimeSource time,
            List<InferenceListener> listeners,
            List<InferenceListener> owned) {
        return read(routing, providers, providerOptions, retry, ledger, clock, time, listeners, owned, b -> {});
    }

    /**
     * Builds the composite client over {@code providers}, as {@link #read(ConfigNode, Map, Map, ConfigNode,
     * CostLedger, Clock, TimeSource, List, List)} does, with {@code more} applied to its builder last (the
     * shared state of the configuration's {@code state} section, for one).
     */
    public static HybridClient read(
            ConfigNode routing,
            Map<String, InferenceClient> providers,
            Map<String, ConfigNode> providerOptions,
            ConfigNode retry,
            CostLedger ledger,
            Clock clock,
            TimeSource time,
            List<InferenceListener> listeners,
            List<InferenceListener> owned,
            java.util.function.Consumer<HybridClient.Builder> more) {
        routing.allowOnly(KEYS);
        if (retry != null && routing.has("retry")) {
            throw new ConfigurationException(
                    routing.pathOf("retry"),
                    "set retry once: at the top level or under routing, not both (the composite client is the"
                            + " one layer that retries)");
        }
        String id = routing.string("id").orElse("hybrid");
        if (!id.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,63}")) {
            throw routing.error(
                    "id",
                    "expected a name of letters, digits, '.', '_' and '-' (at most 64, starting with a"
                            + " letter or digit)");
        }
        HybridClient.Builder hb = extras(HybridClient.builder().id(id), clock, time, listeners, owned)
                .ledger(ledger);
        Map<String, MemberOptions.Builder> options = new LinkedHashMap<>();
        providers.keySet().forEach(name -> options.put(name, providerLevel(providerOptions.get(name))));
        routing.object("members")
                .ifPresent(ms -> ms.entries().forEach((name, m) -> {
                    requireProvider(name, m.path(), providers);
                    check(m.path(), () -> memberOptions(m, options.get(name)));
                }));
        providers.forEach(
                (name, client) -> hb.member(name, client, options.get(name).build()));

        StandardRoutingPolicy.Builder pb = StandardRoutingPolicy.builder().clock(clock);
        routing.object("tiers").ifPresent(ts -> {
            Map<String, ConfigNode> tiers = ts.entries();
            if (tiers.size() > MAX_TIERS) {
                throw new ConfigurationException(ts.path(), "expected at most " + MAX_TIERS + " tiers");
            }
            tiers.forEach((tier, t) -> {
                List<String> names = ts.stringList(tier);
                if (names.isEmpty()) {
                    throw new ConfigurationException(t.path(), "expected a list of provider names");
                }
                for (int i = 0; i < names.size(); i++) {
                    requireProvider(names.get(i), t.path() + "[" + i + "]", providers);
                }
                pb.tier(tier, names);
            });
        });
        List<ConfigNode> rules = routing.list("rules");
        if (rules.size() > MAX_RULES) {
            throw new ConfigurationException(routing.pathOf("rules"), "expected at most " + MAX_RULES + " rules");
        }
        for (ConfigNode r : rules) {
            pb.rule(rule(r, routing));
        }
        routing.string("defaultTier").ifPresent(t -> {
            requireTier(t, routing.pathOf("defaultTier"), routing);
            pb.defaultTier(t);
        });
        routing.object("spillover").ifPresent(s -> {
            s.allowOnly(Set.of("primary", "overflow", "waitForSlot"));
            String primary = s.requireString("primary");
            requireProvider(primary, s.pathOf("primary"), providers);
            List<String> overflow = s.stringList("overflow");
            for (int i = 0; i < overflow.size(); i++) {
                requireProvider(overflow.get(i), s.pathOf("overflow") + "[" + i + "]", providers);
            }
            pb.spillover(
                    primary,
                    overflow,
                    s.duration("waitForSlot", Duration.ZERO, MAX_WAIT).orElse(Duration.ZERO));
        });
        routing.bool("costAware").ifPresent(pb::costAware);
        List<ConfigNode> budgets = routing.list("budgets");
        if (budgets.size() > MAX_BUDGETS) {
            throw new ConfigurationException(routing.pathOf("budgets"), "expected at most " + MAX_BUDGETS + " budgets");
        }
        for (int i = 0; i < budgets.size(); i++) {
            ConfigNode b = budgets.get(i);
            int index = i;
            pb.budget(check(b.path(), () -> budget(b, index, routing)));
        }
        routing.object("retry").ifPresent(r -> hb.retry(check(r.path(), () -> retry(r))));
        if (retry != null) {
            hb.retry(check(retry.path(), () -> retry(retry)));
        }
        routing.object("circuitBreaker").ifPresent(c -> hb.circuitBreaker(check(c.path(), () -> circuitBreaker(c))));
        more.accept(hb);
        return hb.policy(pb.build()).build();
    }

    /** Runs a builder step, turning its argument checks into errors at {@code path}. */
    private static <T> T check(String path, Supplier<T> step) {
        try {
            return step.get();
        } catch (IllegalArgumentException e) {
            throw new ConfigurationException(path, String.valueOf(e.getMessage()), e);
        }
    }

    /**
     * A provider used alone, given {@code retry:} or {@code modelAliases}: a composite client of one member
     * under the provider's name, so that retries and aliases take the same path as in routing. Its circuit
     * breaker never opens: with nothing to fall back to, the provider is always tried.
     *
     * @param options the core's keys of the provider's section, or null
     * @param retry the top-level {@code retry} section, or null for one attempt per call
     */
    public static HybridClient single(
            String name,
            InferenceClient client,
            ConfigNode options,
            ConfigNode retry,
            CostLedger ledger,
            Clock clock,
            TimeSource time,
            List<InferenceListener> listeners,
            List<InferenceListener> owned) {
        MemberOptions memberOptions = providerLevel(options).build();
        RetryPolicy policy = retry == null
                ? new RetryPolicy(
                        1,
                        Duration.ZERO,
                        Duration.ZERO,
                        1,
                        0,
                        RetryPolicy.DEFAULTS.maxRetryAfter(),
                        RetryPolicy.DEFAULTS.maxTotalWait())
                : check(retry.path(), () -> retry(retry));
        String reason = name + " alone";
        return extras(HybridClient.builder().id(name), clock, time, listeners, owned)
                .ledger(ledger)
                .member(name, client, memberOptions)
                .policy((request, members) -> new Route(List.of(name), reason, null))
                .retry(policy)
                .circuitBreaker(Integer.MAX_VALUE, Duration.ZERO)
                .build();
    }

    private static HybridClient.Builder extras(
            HybridClient.Builder b,
            Clock clock,
            TimeSource time,
            List<InferenceListener> listeners,
            List<InferenceListener> owned) {
        if (time == null) {
            b.clock(clock);
        } else {
            b.timeSource(time);
        }
        for (InferenceListener l : listeners) {
            b.listener(l);
            if (l instanceof AutoCloseable && owned.contains(l)) {
                b.onClose((AutoCloseable) l);
            }
        }
        return b;
    }

    /**
     * Checks the core's keys of a provider's section ({@link #PROVIDER_KEYS}).
     *
     * @throws ConfigurationException naming the offending key
     */
    public static void checkProviderOptions(ConfigNode section) {
        providerLevel(section);
    }

    /** The member options a provider's own section sets: its capabilities and model aliases. */
    private static MemberOptions.Builder providerLevel(ConfigNode section) {
        MemberOptions.Builder b = MemberOptions.builder();
        if (section != null) {
            check(section.path(), () -> {
                section.object("capabilities").ifPresent(c -> capabilities(c, b));
                section.object("modelAliases").ifPresent(a -> aliases(a, b));
                return b;
            });
        }
        return b;
    }

    private static void capabilities(ConfigNode c, MemberOptions.Builder b) {
        c.allowOnly(CAPABILITY_KEYS);
        c.bool("tools").ifPresent(b::tools);
        c.bool("jsonSchema").ifPresent(b::jsonSchema);
        c.bool("jsonObject").ifPresent(b::jsonObject);
        c.bool("streaming").ifPresent(b::streaming);
        c.integer("contextLength", 1, MAX_CONTEXT).ifPresent(b::contextLength);
    }

    private static void aliases(ConfigNode a, MemberOptions.Builder b) {
        Map<String, ConfigNode> entries = a.entries();
        if (entries.size() > MAX_ALIASES) {
            throw new ConfigurationException(a.path(), "expected at most " + MAX_ALIASES + " aliases");
        }
        entries.forEach((alias, served) -> {
            String name = served.text();
            if (name.isBlank() || name.chars().anyMatch(Character::isISOControl)) {
                throw new ConfigurationException(
                        served.path(),
                        "expected the served model name, such as" + " meta-llama/Llama-3.1-70B-Instruct");
            }
            if (alias.isBlank() || alias.chars().anyMatch(Character::isISOControl)) {
                throw new ConfigurationException(served.path(), "expected an alias of printable characters");
            }
            b.modelAlias(alias, name);
        });
    }

    /** Reads a member's section over {@code b}, which holds what the provider's own section set. */
    private static MemberOptions.Builder memberOptions(ConfigNode m, MemberOptions.Builder b) {
        m.allowOnly(MEMBER_KEYS);
        if (m.has("contextLength")
                && m.object("capabilities").map(c -> c.has("contextLength")).orElse(false)) {
            throw new ConfigurationException(
                    m.pathOf("contextLength"), "set contextLength once: here or under capabilities, not both");
        }
        m.object("capabilities").ifPresent(c -> capabilities(c, b));
        m.object("modelAliases").ifPresent(a -> aliases(a, b));
        m.integer("maxInFlight", 0, MAX_IN_FLIGHT).ifPresent(b::maxInFlight);
        m.decimal("maxWaiting", BigDecimal.ZERO, MAX_WAITING).ifPresent(d -> b.maxWaiting(d.doubleValue()));
        m.integer("contextLength", 1, MAX_CONTEXT).ifPresent(b::contextLength);
        m.duration("idleTimeout", Duration.ofSeconds(1), MAX_LONG).ifPresent(b::idleTimeout);
        m.duration("coldStartLatency", Duration.ofMillis(1), MAX_WAIT).ifPresent(b::coldStartLatency);
        m.duration("keepWarmEvery", MIN_KEEP_WARM, MAX_LONG).ifPresent(b::keepWarmEvery);
        m.integer("typicalOutputTokens", 0, MAX_CONTEXT).ifPresent(b::typicalOutputTokens);
        return b;
    }

    /**
     * The {@code circuitBreaker} section: failures in a row and a cooldown, and optionally the rate rules
     * over a window of recent calls. Keys that only matter with a rate rule are refused without one, and
     * the slow-call rule needs both its keys, so that no key is silently ignored.
     */
    private static CircuitBreakerConfig circuitBreaker(ConfigNode c) {
        c.allowOnly(CIRCUIT_KEYS);
        CircuitBreakerConfig.Builder b = CircuitBreakerConfig.builder();
        c.integer("failureThreshold", 1, MAX_FAILURE_THRESHOLD).ifPresent(b::failureThreshold);
        c.duration("cooldown", Duration.ZERO, MAX_LONG).ifPresent(b::cooldown);
        int failureRate = c.integer("failureRateThreshold", 1, 100).orElse(0);
        int slowRate = c.integer("slowCallRateThreshold", 1, 100).orElse(0);
        Duration slowCall =
                c.duration("slowCallDuration", Duration.ofMillis(1), MAX_WAIT).orElse(null);
        if (slowRate > 0 && slowCall == null) {
            throw c.missing("slowCallDuration", "how long a call takes to count as slow, such as 5s");
        }
        if (slowRate == 0 && slowCall != null) {
            throw c.error(
                    "slowCallDuration",
                    "applies only with slowCallRateThreshold (the percentage of slow calls that opens the"
                            + " circuit): set both, or neither");
        }
        if (failureRate == 0 && slowRate == 0) {
            for (String key : List.of("windowCalls", "windowDuration", "minimumCalls")) {
                if (c.has(key)) {
                    throw c.error(
                            key,
                            "applies only with failureRateThreshold or slowCallRateThreshold: without a rate"
                                    + " rule no window is kept");
                }
            }
        }
        if (c.has("windowCalls") && c.has("windowDuration")) {
            throw c.error(
                    "windowDuration",
                    "set the window once: windowCalls (the last N calls) or windowDuration (the calls of the"
                            + " last stretch of time), not both");
        }
        b.failureRateThreshold(failureRate);
        if (slowRate > 0) {
            b.slowCallRateThreshold(slowRate, slowCall);
        }
        c.integer("windowCalls", 1, CircuitBreakerConfig.MAX_WINDOW_CALLS).ifPresent(b::windowCalls);
        c.duration("windowDuration", CircuitBreakerConfig.MIN_WINDOW_DURATION, CircuitBreakerConfig.MAX_WINDOW_DURATION)
                .ifPresent(b::windowDuration);
        Optional<Integer> minimum = c.integer("minimumCalls", 1, CircuitBreakerConfig.MAX_WINDOW_CALLS);
        CircuitBreakerConfig sofar = b.build();
        if (minimum.isPresent() && sofar.windowCalls() > 0 && minimum.get() > sofar.windowCalls()) {
            throw c.error(
                    "minimumCalls",
                    "expected at most windowCalls (" + sofar.windowCalls() + "), as the window never holds more");
        }
        minimum.ifPresent(b::minimumCalls);
        return b.build();
    }

    private static TierRule rule(ConfigNode r, ConfigNode routing) {
        r.allowOnly(Set.of("model", "maxPromptTokens", "minPromptTokens", "tag", "tier"));
        String tier = r.requireString("tier");
        requireTier(tier, r.pathOf("tier"), routing);
        int conditions = (r.has("model") ? 1 : 0)
                + (r.has("maxPromptTokens") ? 1 : 0)
                + (r.has("minPromptTokens") ? 1 : 0)
                + (r.has("tag") ? 1 : 0);
        if (conditions != 1) {
            throw new ConfigurationException(
                    r.path(), "expected exactly one condition: model, maxPromptTokens, minPromptTokens or tag");
        }
        if (r.has("model")) {
            return TierRule.model(r.requireString("model"), tier);
        }
        if (r.has("maxPromptTokens")) {
            return TierRule.promptTokensAtMost(
                    r.integer("maxPromptTokens", 0, MAX_CONTEXT).orElseThrow(), tier);
        }
        if (r.has("minPromptTokens")) {
            return TierRule.promptTokensAbove(
                    r.integer("minPromptTokens", 1, MAX_CONTEXT).orElseThrow() - 1, tier);
        }
        Map<String, ConfigNode> tag = r.requireObject("tag").entries();
        if (tag.size() != 1) {
            throw new ConfigurationException(
                    r.pathOf("tag"), "expected one key: value pair, such as {feature: search}");
        }
        Map.Entry<String, ConfigNode> e = tag.entrySet().iterator().next();
        return TierRule.tag(e.getKey(), e.getValue().text(), tier);
    }

    private static Budget budget(ConfigNode b, int index, ConfigNode routing) {
        b.allowOnly(Set.of("name", "period", "limit", "tags", "downgradeTo"));
        Duration period = b.duration("period", MIN_BUDGET_PERIOD, MAX_BUDGET_PERIOD)
                .orElseThrow(() -> b.missing("period", "a duration such as 1d or 1h"));
        BigDecimal limit = b.nonNegativeDecimal("limit").orElseThrow(() -> b.missing("limit", "USD per period"));
        Map<String, String> tags = new LinkedHashMap<>();
        b.object("tags").ifPresent(t -> t.entries().forEach((k, v) -> tags.put(k, v.text())));
        String downgrade = b.string("downgradeTo").orElse(null);
        if (downgrade != null) {
            requireTier(downgrade, b.pathOf("downgradeTo"), routing);
        }
        return new Budget(b.string("name").orElse("budget-" + index), period, limit, tags, downgrade);
    }

    private static RetryPolicy retry(ConfigNode r) {
        r.allowOnly(RETRY_KEYS);
        RetryPolicy d = RetryPolicy.DEFAULTS;
        double jitter =
                r.nonNegativeDecimal("jitter").map(BigDecimal::doubleValue).orElse(d.jitter());
        if (jitter > 1) {
            throw new ConfigurationException(r.pathOf("jitter"), "expected a fraction from 0 to 1, got " + jitter);
        }
        double multiplier =
                r.nonNegativeDecimal("multiplier").map(BigDecimal::doubleValue).orElse(d.multiplier());
        if (multiplier < 1 || multiplier > MAX_MULTIPLIER.doubleValue()) {
            throw new ConfigurationException(
                    r.pathOf("multiplier"), "expected a number from 1 to " + MAX_MULTIPLIER + ", got " + multiplier);
        }
        return new RetryPolicy(
                r.integer("maxAttempts", 1, MAX_ATTEMPTS).orElse(d.maxAttempts()),
                r.duration("initialBackoff", Duration.ZERO, MAX_WAIT).orElse(d.initialBackoff()),
                r.duration("maxBackoff", Duration.ZERO, MAX_WAIT).orElse(d.maxBackoff()),
                multiplier,
                jitter,
                r.duration("maxRetryAfter", Duration.ZERO, MAX_WAIT).orElse(d.maxRetryAfter()),
                r.duration("maxTotalWait", Duration.ZERO, MAX_LONG).orElse(d.maxTotalWait()));
    }

    private static void requireProvider(String name, String path, Map<String, InferenceClient> providers) {
        if (!providers.containsKey(name)) {
            throw new ConfigurationException(
                    path,
                    "names \"" + name + "\", which is not a provider; expected one of "
                            + String.join(", ", providers.keySet()));
        }
    }

    private static void requireTier(String tier, String path, ConfigNode routing) {
        boolean defined = routing.object("tiers").map(t -> t.has(tier)).orElse(false);
        if (!defined) {
            throw new ConfigurationException(
                    path, "names tier \"" + tier + "\", which is not defined under routing.tiers");
        }
    }
}
