package dev.hybridinference.core.internal;

import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.routing.Budget;
import dev.hybridinference.core.routing.HybridClient;
import dev.hybridinference.core.routing.MemberOptions;
import dev.hybridinference.core.routing.RetryPolicy;
import dev.hybridinference.core.routing.StandardRoutingPolicy;
import dev.hybridinference.core.routing.TierRule;
import dev.hybridinference.core.spi.ConfigNode;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Builds a {@link HybridClient} from the {@code routing:} section of a configuration. Internal: the
 * format is documented in the README.
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
            "typicalOutputTokens");

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
     * Builds the composite client over {@code providers}.
     *
     * @param routing the {@code routing} section
     * @param providers the built providers, by id, in document order
     */
    public static HybridClient read(
            ConfigNode routing, Map<String, InferenceClient> providers, CostLedger ledger, Clock clock) {
        routing.allowOnly(KEYS);
        String id = routing.string("id").orElse("hybrid");
        if (!id.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,63}")) {
            throw routing.error(
                    "id",
                    "expected a name of letters, digits, '.', '_' and '-' (at most 64, starting with a"
                            + " letter or digit)");
        }
        HybridClient.Builder hb = HybridClient.builder().id(id).clock(clock);
        Map<String, MemberOptions> options = new LinkedHashMap<>();
        routing.object("members")
                .ifPresent(ms -> ms.entries().forEach((name, m) -> {
                    requireProvider(name, m.path(), providers);
                    options.put(name, check(m.path(), () -> memberOptions(m)));
                }));
        providers.forEach(
                (name, client) -> hb.member(name, client, options.getOrDefault(name, MemberOptions.DEFAULTS)));

        StandardRoutingPolicy.Builder pb =
                StandardRoutingPolicy.builder().clock(clock).ledger(ledger);
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
        routing.object("circuitBreaker").ifPresent(c -> {
            c.allowOnly(Set.of("failureThreshold", "cooldown"));
            hb.circuitBreaker(
                    c.integer("failureThreshold", 1, MAX_FAILURE_THRESHOLD).orElse(5),
                    c.duration("cooldown", Duration.ZERO, MAX_LONG).orElse(Duration.ofSeconds(30)));
        });
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

    private static MemberOptions memberOptions(ConfigNode m) {
        m.allowOnly(MEMBER_KEYS);
        MemberOptions.Builder b = MemberOptions.builder();
        m.integer("maxInFlight", 0, MAX_IN_FLIGHT).ifPresent(b::maxInFlight);
        m.decimal("maxWaiting", BigDecimal.ZERO, MAX_WAITING).ifPresent(d -> b.maxWaiting(d.doubleValue()));
        m.integer("contextLength", 1, MAX_CONTEXT).ifPresent(b::contextLength);
        m.duration("idleTimeout", Duration.ofSeconds(1), MAX_LONG).ifPresent(b::idleTimeout);
        m.duration("coldStartLatency", Duration.ofMillis(1), MAX_WAIT).ifPresent(b::coldStartLatency);
        m.duration("keepWarmEvery", MIN_KEEP_WARM, MAX_LONG).ifPresent(b::keepWarmEvery);
        m.integer("typicalOutputTokens", 0, MAX_CONTEXT).ifPresent(b::typicalOutputTokens);
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
        r.allowOnly(Set.of(
                "maxAttempts",
                "initialBackoff",
                "maxBackoff",
                "multiplier",
                "jitter",
                "maxRetryAfter",
                "maxTotalWait"));
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
