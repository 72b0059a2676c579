package dev.hybridinference.core.internal;

import com.fasterxml.jackson.databind.JsonNode;
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

/**
 * Builds a {@link HybridClient} from the {@code routing:} section of a configuration. Internal: the
 * format is documented in the README.
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
        HybridClient.Builder hb =
                HybridClient.builder().id(routing.string("id").orElse("hybrid")).clock(clock);
        Map<String, MemberOptions> options = new LinkedHashMap<>();
        routing.object("members")
                .ifPresent(ms -> ms.entries().forEach((name, m) -> {
                    requireProvider(name, m.path(), providers);
                    options.put(name, memberOptions(m));
                }));
        providers.forEach(
                (name, client) -> hb.member(name, client, options.getOrDefault(name, MemberOptions.DEFAULTS)));

        StandardRoutingPolicy.Builder pb =
                StandardRoutingPolicy.builder().clock(clock).ledger(ledger);
        routing.object("tiers")
                .ifPresent(ts -> ts.entries().forEach((tier, t) -> {
                    List<String> names = routing.requireObject("tiers").stringList(tier);
                    if (names.isEmpty()) {
                        throw new ConfigurationException(t.path(), "expected a list of provider names");
                    }
                    for (int i = 0; i < names.size(); i++) {
                        requireProvider(names.get(i), t.path() + "[" + i + "]", providers);
                    }
                    pb.tier(tier, names);
                }));
        if (routing.has("rules")) {
            JsonNode rules = routing.raw().get("rules");
            if (!rules.isArray()) {
                throw routing.error("rules", "expected a list of rules", rules);
            }
            for (int i = 0; i < rules.size(); i++) {
                pb.rule(rule(new ConfigNode(routing.pathOf("rules") + "[" + i + "]", rules.get(i)), routing));
            }
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
            pb.spillover(primary, overflow, s.duration("waitForSlot").orElse(Duration.ZERO));
        });
        routing.bool("costAware").ifPresent(pb::costAware);
        if (routing.has("budgets")) {
            JsonNode budgets = routing.raw().get("budgets");
            if (!budgets.isArray()) {
                throw routing.error("budgets", "expected a list of budgets", budgets);
            }
            for (int i = 0; i < budgets.size(); i++) {
                pb.budget(
                        budget(new ConfigNode(routing.pathOf("budgets") + "[" + i + "]", budgets.get(i)), i, routing));
            }
        }
        routing.object("retry").ifPresent(r -> hb.retry(retry(r)));
        routing.object("circuitBreaker").ifPresent(c -> {
            c.allowOnly(Set.of("failureThreshold", "cooldown"));
            hb.circuitBreaker(
                    c.integer("failureThreshold", 1).orElse(5),
                    c.duration("cooldown").orElse(Duration.ofSeconds(30)));
        });
        return hb.policy(pb.build()).build();
    }

    private static MemberOptions memberOptions(ConfigNode m) {
        m.allowOnly(MEMBER_KEYS);
        MemberOptions.Builder b = MemberOptions.builder();
        m.integer("maxInFlight", 0).ifPresent(b::maxInFlight);
        m.nonNegativeDecimal("maxWaiting").ifPresent(d -> b.maxWaiting(d.doubleValue()));
        m.integer("contextLength", 1).ifPresent(b::contextLength);
        m.duration("idleTimeout").ifPresent(d -> b.idleTimeout(positive(d, m, "idleTimeout")));
        m.duration("coldStartLatency").ifPresent(d -> b.coldStartLatency(positive(d, m, "coldStartLatency")));
        m.duration("keepWarmEvery").ifPresent(d -> b.keepWarmEvery(positive(d, m, "keepWarmEvery")));
        m.integer("typicalOutputTokens", 0).ifPresent(b::typicalOutputTokens);
        return b.build();
    }

    private static Duration positive(Duration d, ConfigNode node, String key) {
        if (d.isZero()) {
            throw new ConfigurationException(node.pathOf(key), "expected a positive duration, got 0");
        }
        return d;
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
            return TierRule.promptTokensAtMost(r.integer("maxPromptTokens", 0).orElseThrow(), tier);
        }
        if (r.has("minPromptTokens")) {
            return TierRule.promptTokensAbove(r.integer("minPromptTokens", 1).orElseThrow() - 1, tier);
        }
        Map<String, ConfigNode> tag = r.requireObject("tag").entries();
        if (tag.size() != 1) {
            throw new ConfigurationException(
                    r.pathOf("tag"), "expected one key: value pair, such as {feature: search}");
        }
        Map.Entry<String, ConfigNode> e = tag.entrySet().iterator().next();
        return TierRule.tag(e.getKey(), e.getValue().raw().asText(), tier);
    }

    private static Budget budget(ConfigNode b, int index, ConfigNode routing) {
        b.allowOnly(Set.of("name", "period", "limit", "tags", "downgradeTo"));
        Duration period = b.duration("period").orElseThrow(() -> b.missing("period", "a duration such as 1d or 1h"));
        if (period.isZero()) {
            throw new ConfigurationException(b.pathOf("period"), "expected a positive duration, got 0");
        }
        BigDecimal limit = b.nonNegativeDecimal("limit").orElseThrow(() -> b.missing("limit", "USD per period"));
        Map<String, String> tags = new LinkedHashMap<>();
        b.object("tags")
                .ifPresent(
                        t -> t.entries().forEach((k, v) -> tags.put(k, v.raw().asText())));
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
        if (multiplier < 1) {
            throw new ConfigurationException(r.pathOf("multiplier"), "expected at least 1, got " + multiplier);
        }
        return new RetryPolicy(
                r.integer("maxAttempts", 1).orElse(d.maxAttempts()),
                r.duration("initialBackoff").orElse(d.initialBackoff()),
                r.duration("maxBackoff").orElse(d.maxBackoff()),
                multiplier,
                jitter,
                r.duration("maxRetryAfter").orElse(d.maxRetryAfter()),
                r.duration("maxTotalWait").orElse(d.maxTotalWait()));
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
        if (!routing.has("tiers") || !routing.raw().get("tiers").has(tier)) {
            throw new ConfigurationException(
                    path, "names tier \"" + tier + "\", which is not defined under routing.tiers");
        }
    }
}
