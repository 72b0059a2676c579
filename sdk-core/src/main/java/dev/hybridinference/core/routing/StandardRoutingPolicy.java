package dev.hybridinference.core.routing;

import dev.hybridinference.core.BudgetExceededException;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.core.spi.Deadline;
import dev.hybridinference.core.spi.SharedState;
import java.math.BigDecimal;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * The routing policy the configuration builds, composed of optional parts applied in this order:
 *
 * <ol>
 *   <li><b>tiering</b>: the first {@link TierRule} that matches picks a tier (or the request's tier hint,
 *       when it names a tier), else the default tier; a tier lists its members in order of preference;
 *   <li><b>budgets</b>: a spent budget refuses the request or downgrades it to a cheaper tier;
 *   <li><b>spillover</b>: the primary goes first while it has capacity; when it is full (its in-flight
 *       limit or its load signal's queue) the overflow members go before it (the client may still wait
 *       a short while for a slot);
 *   <li><b>cold-start awareness</b>: a member predicted cold whose expected latency would break the
 *       request's deadline or latency objective moves behind the members that fit;
 *   <li><b>cost awareness</b>: among the members that meet the latency objective, the lowest expected
 *       cost first.
 * </ol>
 *
 * Thread-safe.
 */
public final class StandardRoutingPolicy implements RoutingPolicy {
    private static final Duration DEFAULT_LATENCY = Duration.ofSeconds(1);

    private final Map<String, List<String>> tiers;
    private final List<TierRule> rules;
    private final String defaultTier;
    private final String spilloverPrimary;
    private final List<String> overflow;
    private final Duration waitForSlot;
    private final boolean costAware;
    private final List<BudgetState> budgets;
    private final Clock clock;
    private final CostLedger ledger;
    private final Builder source;
    /** The state budgets count in across instances, or null to count here. */
    private final SharedStateGuard shared;
    /** Before every shared key: the composite client's id. */
    private final String sharedPrefix;
    /** The budget reservations of calls routed and not yet recorded, by their route (the same object). */
    private final Map<Route, List<Reservation>> reserved =
            java.util.Collections.synchronizedMap(new java.util.IdentityHashMap<>());

    private StandardRoutingPolicy(Builder b) {
        this.source = b.copy();
        this.tiers = Map.copyOf(b.tiers);
        this.rules = List.copyOf(b.rules);
        this.defaultTier = b.defaultTier != null
                ? b.defaultTier
                : b.tiers.keySet().stream().findFirst().orElse(null);
        this.spilloverPrimary = b.spilloverPrimary;
        this.overflow = List.copyOf(b.overflow);
        this.waitForSlot = b.waitForSlot;
        this.costAware = b.costAware;
        List<BudgetState> states = new ArrayList<>();
        for (Budget budget : b.budgets) {
            states.add(new BudgetState(budget));
        }
        this.budgets = List.copyOf(states);
        this.clock = b.clock;
        this.ledger = b.ledger;
        this.shared = b.shared;
        this.sharedPrefix = b.sharedPrefix;
        for (TierRule r : rules) {
            requireTier(r.tier(), "rule " + r.description());
        }
        for (Budget budget : b.budgets) {
            if (budget.downgradeTier() != null) {
                requireTier(budget.downgradeTier(), "budget " + budget.name());
            }
        }
        if (defaultTier != null) {
            requireTier(defaultTier, "the default tier");
        }
    }

    private void requireTier(String tier, String who) {
        if (!tiers.containsKey(tier)) {
            throw new IllegalArgumentException(who + " names tier \"" + tier + "\", which is not defined; tiers: "
                    + String.join(", ", tiers.keySet()));
        }
    }

    /** A builder with no parts: every member in the order given, no budgets. */
    public static Builder builder() {
        return new Builder();
    }

    /** The ledger its budgets start each period from, if it has one. */
    public Optional<CostLedger> ledger() {
        return Optional.ofNullable(ledger);
    }

    /**
     * This policy counting its budgets in {@code l}: itself when it already does, a copy with the same
     * parts (and budgets spent from nothing) when it has no ledger.
     *
     * @throws IllegalArgumentException when it counts in another ledger
     */
    StandardRoutingPolicy boundTo(CostLedger l) {
        if (ledger == l) {
            return this;
        }
        if (ledger != null) {
            throw new IllegalArgumentException("the routing policy counts its budgets in another ledger than the"
                    + " client's: build it without a ledger (the client's is used) or with the same one");
        }
        return source.copy().ledger(l).build();
    }

    /**
     * This policy counting its budgets in shared state, across every instance that shares it, under keys of
     * {@code clientId}: a copy with the same parts.
     *
     * @throws IllegalArgumentException when a budget's limit is beyond what a shared counter holds
     */
    StandardRoutingPolicy sharing(SharedStateGuard state, String clientId) {
        for (Budget b : source.budgets) {
            try {
                SharedState.units(b.limit());
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("budget " + b.name() + ": a limit of " + Pricing.formatUsd(b.limit())
                        + " is beyond what shared state counts (about $9.2 million per period)");
            }
        }
        Builder b = source.copy();
        b.shared = state;
        b.sharedPrefix = clientId;
        return b.build();
    }

    /** Every member name the policy refers to. */
    public java.util.Set<String> referencedMembers() {
        java.util.Set<String> names = new java.util.LinkedHashSet<>();
        tiers.values().forEach(names::addAll);
        if (spilloverPrimary != null) {
            names.add(spilloverPrimary);
        }
        names.addAll(overflow);
        return names;
    }

    /** The spillover primary, if any. */
    public Optional<String> spilloverPrimary() {
        return Optional.ofNullable(spilloverPrimary);
    }

    /** How long a call may wait for a slot on the spillover primary before it spills. */
    public Duration waitForSlot() {
        return waitForSlot;
    }

    /**
     * {@inheritDoc}
     *
     * <p>With shared state (see {@link HybridClient.Builder#sharedState}), a budget that lets the call through
     * also holds back the most the call is expected to cost (its pricing applied to the estimated prompt and
     * {@code maxTokens}, or the member's {@code typicalOutputTokens}, at the costliest member it may go to)
     * until the call's receipt replaces it with the actual cost. A call is let through only while the spend,
     * held-back amounts included, is under the limit, so that however many instances and threads call at
     * once, a budget is passed by at most one call's cost (when no call costs more than expected).
     */
    @Override
    public Route route(ChatRequest request, Map<String, MemberState> members) {
        StringBuilder reason = new StringBuilder();
        String tier = pickTier(request, reason);
        List<Reservation> holds = shared != null && !budgets.isEmpty() ? new ArrayList<>(budgets.size()) : null;
        boolean routed = false;
        try {
            tier = applyBudgets(request, tier, reason, members, holds);
            List<String> candidates = new ArrayList<>(tier != null ? tiers.get(tier) : members.keySet());
            boolean spilled = spilloverPrimary != null && spill(candidates, members, reason);
            Duration budget = latencyBudget(request);
            if (budget != null) {
                skipCold(candidates, members, budget, reason);
            }
            if (costAware) {
                byCost(candidates, members, request, budget, reason);
            }
            Route route = new Route(candidates, reason.toString(), tier, spilled);
            if (holds != null && !holds.isEmpty()) {
                reserved.put(route, holds);
            }
            routed = true;
            return route;
        } finally {
            if (!routed && holds != null) {
                giveBack(holds);
            }
        }
    }

    /** Takes back what the budgets held for a call that goes nowhere. */
    private void giveBack(List<Reservation> holds) {
        for (Reservation r : holds) {
            shared.add(r.key, -r.amount, r.state.ttl);
        }
        holds.clear();
    }

    private String pickTier(ChatRequest request, StringBuilder reason) {
        if (tiers.isEmpty()) {
            return null;
        }
        Optional<String> hint = request.options().tierHint();
        if (hint.isPresent() && tiers.containsKey(hint.get())) {
            reason.append("tier ").append(hint.get()).append(" by hint");
            return hint.get();
        }
        for (TierRule r : rules) {
            if (r.predicate().test(request)) {
                reason.append("tier ").append(r.tier()).append(" by rule ").append(r.description());
                return r.tier();
            }
        }
        reason.append("tier ").append(defaultTier).append(" by default");
        return defaultTier;
    }

    private String applyBudgets(
            ChatRequest request,
            String tier,
            StringBuilder reason,
            Map<String, MemberState> members,
            List<Reservation> holds) {
        if (budgets.isEmpty()) {
            return tier;
        }
        Instant now = clock.instant();
        Map<String, String> tags = request.options().tags();
        for (BudgetState b : budgets) {
            if (!b.budget.appliesTo(tags)) {
                continue;
            }
            BigDecimal spent =
                    holds == null ? b.spent(now) : b.reserve(now, expectedMost(request, tier, members), holds);
            if (spent.compareTo(b.budget.limit()) >= 0) {
                String what = "budget " + b.budget.name() + " spent (" + Pricing.formatUsd(spent) + " of "
                        + Pricing.formatUsd(b.budget.limit()) + " this period, resets at " + b.windowEnd(now) + ")";
                if (b.budget.downgradeTier() == null) {
                    throw new BudgetExceededException(what + "; request refused", null);
                }
                if (reason.length() > 0) {
                    reason.append("; ");
                }
                reason.append(what).append(": downgraded to tier ").append(b.budget.downgradeTier());
                tier = b.budget.downgradeTier();
            }
        }
        return tier;
    }

    /**
     * The most a call may be expected to cost at any member of {@code tier} (every member without tiers) or
     * of the spillover's overflow: each member's pricing applied to the estimated prompt and the request's
     * {@code maxTokens} (else the member's typical output), at its warm latency (else a second).
     */
    private BigDecimal expectedMost(ChatRequest request, String tier, Map<String, MemberState> members) {
        List<String> names = new ArrayList<>(tier != null ? tiers.get(tier) : members.keySet());
        if (spilloverPrimary != null && names.contains(spilloverPrimary)) {
            names.addAll(overflow);
        }
        long prompt = TierRule.estimatePromptTokens(request);
        BigDecimal most = BigDecimal.ZERO;
        for (String name : names) {
            MemberState m = members.get(name);
            if (m == null) {
                continue;
            }
            int out = request.maxTokens().orElse(m.options().typicalOutputTokens());
            Duration busy = m.warmLatency().orElse(DEFAULT_LATENCY);
            try {
                BigDecimal c = expectedCost(m.info(), new Pricing.BillableUsage(new Usage(prompt, out, 0), busy, busy));
                most = c.compareTo(most) > 0 ? c : most;
            } catch (RuntimeException e) {
                // A pricing that cannot price this usage holds nothing back; the receipt still counts.
            }
        }
        return most;
    }

    /** Moves a full spillover primary behind its overflow members; true when it did. */
    private boolean spill(List<String> candidates, Map<String, MemberState> members, StringBuilder reason) {
        MemberState primary = members.get(spilloverPrimary);
        int at = candidates.indexOf(spilloverPrimary);
        if (primary == null || at < 0) {
            return false;
        }
        for (String o : overflow) {
            if (!candidates.contains(o)) {
                candidates.add(o);
            }
        }
        int limit = primary.options().maxInFlight();
        boolean full = (limit > 0 && primary.inFlight() >= limit) || primary.loadFull();
        if (full && waitForSlot.isZero()) {
            candidates.remove(at);
            candidates.add(spilloverPrimary);
            sep(reason)
                    .append("spilled over: ")
                    .append(spilloverPrimary)
                    .append(" at ")
                    .append(primary.capacityText());
            return true;
        }
        return false;
    }

    /** The time a member may take: the latency objective or the time left before the deadline, whichever is less. */
    private Duration latencyBudget(ChatRequest request) {
        Duration objective = request.options().latencyObjective().orElse(null);
        // Read through Deadline so that a deadline of Instant.MAX or centuries away counts as none.
        Duration deadline = Deadline.of(request.options(), clock).remaining().orElse(null);
        if (objective == null) {
            return deadline;
        }
        return deadline == null || objective.compareTo(deadline) < 0 ? objective : deadline;
    }

    private static void skipCold(
            List<String> candidates, Map<String, MemberState> members, Duration budget, StringBuilder reason) {
        List<String> tooSlow = new ArrayList<>(0);
        for (String name : candidates) {
            MemberState m = members.get(name);
            if (m != null && m.predictedCold() && m.expectedLatency().compareTo(budget) > 0) {
                tooSlow.add(name);
            }
        }
        if (tooSlow.isEmpty() || tooSlow.size() == candidates.size()) {
            return;
        }
        candidates.removeAll(tooSlow);
        candidates.addAll(tooSlow);
        for (String name : tooSlow) {
            sep(reason)
                    .append("skipped cold ")
                    .append(name)
                    .append(" (expected ")
                    .append(Deadline.saturatedMillis(members.get(name).expectedLatency()))
                    .append(" ms > ")
                    .append(Deadline.saturatedMillis(budget))
                    .append(" ms allowed)");
        }
    }

    private static void byCost(
            List<String> candidates,
            Map<String, MemberState> members,
            ChatRequest request,
            Duration budget,
            StringBuilder reason) {
        long prompt = TierRule.estimatePromptTokens(request);
        List<String> fit = new ArrayList<>();
        List<String> rest = new ArrayList<>();
        Map<String, BigDecimal> cost = new LinkedHashMap<>();
        for (String name : candidates) {
            MemberState m = members.get(name);
            if (m == null) {
                rest.add(name);
                continue;
            }
            Duration latency = m.expectedLatency();
            (budget == null || latency.compareTo(budget) <= 0 ? fit : rest).add(name);
            int out = request.maxTokens().orElse(m.options().typicalOutputTokens());
            Duration busy = m.warmLatency().orElse(DEFAULT_LATENCY);
            cost.put(name, expectedCost(m.info(), new Pricing.BillableUsage(new Usage(prompt, out, 0), busy, busy)));
        }
        fit.sort(Comparator.comparing(cost::get));
        candidates.clear();
        candidates.addAll(fit);
        candidates.addAll(rest);
        if (!fit.isEmpty()) {
            sep(reason)
                    .append("cheapest expected: ")
                    .append(fit.get(0))
                    .append(" ($")
                    .append(cost.get(fit.get(0)).stripTrailingZeros().toPlainString())
                    .append(')');
        }
    }

    /** What a call is expected to cost there; for a composite member, at its cheapest member. */
    private static BigDecimal expectedCost(ClientInfo info, Pricing.BillableUsage usage) {
        if (!info.isComposite()) {
            return info.pricing().costOf(usage);
        }
        BigDecimal least = null;
        for (ClientInfo m : info.members()) {
            BigDecimal c = expectedCost(m, usage);
            least = least == null || c.compareTo(least) < 0 ? c : least;
        }
        return least;
    }

    private static StringBuilder sep(StringBuilder sb) {
        return sb.length() == 0 ? sb : sb.append("; ");
    }

    @Override
    public void recorded(ChatRequest request, Receipt receipt) {
        recorded(request, null, receipt);
    }

    /**
     * {@inheritDoc}
     *
     * <p>With shared state, the amounts the budgets held back for the call when {@code route} was made are
     * replaced by its actual cost.
     */
    @Override
    public void recorded(ChatRequest request, Route route, Receipt receipt) {
        List<Reservation> holds = route == null || shared == null ? null : reserved.remove(route);
        if (budgets.isEmpty() || (receipt.cost().signum() == 0 && holds == null)) {
            return;
        }
        Instant now = clock.instant();
        for (BudgetState b : budgets) {
            if (!b.budget.appliesTo(request.options().tags())) {
                continue;
            }
            Reservation held = null;
            if (holds != null) {
                for (Reservation r : holds) {
                    if (r.state == b) {
                        held = r;
                        break;
                    }
                }
            }
            if (held != null) {
                long delta = SharedState.units(receipt.cost()) - held.amount;
                if (delta != 0) {
                    shared.add(held.key, delta, b.ttl);
                }
            } else if (receipt.cost().signum() != 0) {
                b.add(now, receipt.cost());
            }
        }
    }

    /** What a budget held back for a call: in which counter (the window's), and how much. */
    private static final class Reservation {
        final BudgetState state;
        final String key;
        final long amount;

        Reservation(BudgetState state, String key, long amount) {
            this.state = state;
            this.key = key;
            this.amount = amount;
        }
    }

    /**
     * A budget's spend in its current window: counted here, or, with shared state, in a counter of the
     * window there (in {@link SharedState#UNITS_PER_USD units}), which every instance adds to.
     */
    private final class BudgetState {
        final Budget budget;
        final long periodMillis;
        /** How long a shared window's counter is kept after its last change: past the window's end. */
        final Duration ttl;

        long window = Long.MIN_VALUE;
        BigDecimal spent = BigDecimal.ZERO;

        BudgetState(Budget budget) {
            this.budget = budget;
            // A period too long to count in milliseconds is one window for all time.
            this.periodMillis = Math.max(1, Deadline.saturatedMillis(budget.period()));
            this.ttl = Duration.ofMillis(Math.min(periodMillis, Long.MAX_VALUE / 4))
                    .plusMinutes(1);
        }

        /** The shared counter of the window at {@code now}. */
        String key(Instant now) {
            return sharedPrefix + ":budget:" + budget.name() + ":" + periodMillis + ":"
                    + Math.floorDiv(now.toEpochMilli(), periodMillis);
        }

        BigDecimal spent(Instant now) {
            if (shared != null) {
                return SharedState.usd(shared.get(key(now), ttl));
            }
            synchronized (this) {
                roll(now);
                return spent;
            }
        }

        /**
         * With shared state: holds back {@code expected} in the window's counter, and returns what was spent
         * (held-back amounts included) before it. When that reaches the limit, gives it back at once; else
         * adds it to {@code holds}.
         */
        BigDecimal reserve(Instant now, BigDecimal expected, List<Reservation> holds) {
            String key = key(now);
            long amount = SharedState.units(expected);
            if (amount == 0) {
                return SharedState.usd(shared.get(key, ttl));
            }
            long before = shared.add(key, amount, ttl) - amount;
            if (before >= SharedState.units(budget.limit())) {
                shared.add(key, -amount, ttl);
            } else {
                holds.add(new Reservation(this, key, amount));
            }
            return SharedState.usd(before);
        }

        void add(Instant now, BigDecimal cost) {
            if (shared != null) {
                shared.add(key(now), SharedState.units(cost), ttl);
                return;
            }
            synchronized (this) {
                roll(now);
                spent = spent.add(cost);
            }
        }

        Instant windowEnd(Instant now) {
            return Instant.ofEpochMilli((Math.floorDiv(now.toEpochMilli(), periodMillis) + 1) * periodMillis);
        }

        /** Starts a new window when the period rolls over, from what the ledger holds for it. */
        private void roll(Instant now) {
            long w = Math.floorDiv(now.toEpochMilli(), periodMillis);
            if (w == window) {
                return;
            }
            window = w;
            spent = BigDecimal.ZERO;
            if (ledger != null && budget.tags().size() <= 1) {
                var totals = ledger.totals(Instant.ofEpochMilli(w * periodMillis), now);
                spent = budget.tags().isEmpty()
                        ? totals.total()
                        : budget.tags().entrySet().stream()
                                .map(e -> totals.tag(e.getKey(), e.getValue()))
                                .findFirst()
                                .orElse(BigDecimal.ZERO);
            }
        }
    }

    /** Builds a {@link StandardRoutingPolicy}. Not thread-safe. */
    public static final class Builder {
        private final Map<String, List<String>> tiers = new LinkedHashMap<>();
        private final List<TierRule> rules = new ArrayList<>();
        private String defaultTier;
        private String spilloverPrimary;
        private final List<String> overflow = new ArrayList<>();
        private Duration waitForSlot = Duration.ZERO;
        private boolean costAware;
        private final List<Budget> budgets = new ArrayList<>();
        private Clock clock = Clock.systemUTC();
        private CostLedger ledger;
        private SharedStateGuard shared;
        private String sharedPrefix;

        private Builder() {}

        /** Defines a tier: its members in order of preference. */
        public Builder tier(String name, List<String> members) {
            if (members.isEmpty()) {
                throw new IllegalArgumentException("tier " + name + " needs at least one member");
            }
            tiers.put(Objects.requireNonNull(name, "name"), List.copyOf(members));
            return this;
        }

        /** Adds a tier rule; rules are tried in the order added. */
        public Builder rule(TierRule rule) {
            rules.add(Objects.requireNonNull(rule, "rule"));
            return this;
        }

        /** The tier when no rule matches; the first tier defined unless set. */
        public Builder defaultTier(String tier) {
            this.defaultTier = tier;
            return this;
        }

        /**
         * Spillover: {@code primary} takes traffic until full (its member options' in-flight limit or load
         * signal), then {@code overflow} members do.
         *
         * @param waitForSlot how long a call may wait for a slot on the primary before spilling; zero to
         *     spill at once
         */
        public Builder spillover(String primary, List<String> overflow, Duration waitForSlot) {
            this.spilloverPrimary = Objects.requireNonNull(primary, "primary");
            this.overflow.clear();
            this.overflow.addAll(overflow);
            if (waitForSlot.isNegative()) {
                throw new IllegalArgumentException("waitForSlot must not be negative, got " + waitForSlot);
            }
            this.waitForSlot = waitForSlot;
            return this;
        }

        /** Among members meeting the latency objective, try the cheapest expected first. */
        public Builder costAware(boolean costAware) {
            this.costAware = costAware;
            return this;
        }

        /** Adds a budget. */
        public Builder budget(Budget budget) {
            budgets.add(Objects.requireNonNull(budget, "budget"));
            return this;
        }

        /** The clock budgets use for their periods. */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        /** The ledger a budget's window starts from (what was spent before this client started). */
        public Builder ledger(CostLedger ledger) {
            this.ledger = ledger;
            return this;
        }

        /** A builder with the same parts as this one. */
        private Builder copy() {
            Builder b = new Builder();
            b.tiers.putAll(tiers);
            b.rules.addAll(rules);
            b.defaultTier = defaultTier;
            b.spilloverPrimary = spilloverPrimary;
            b.overflow.addAll(overflow);
            b.waitForSlot = waitForSlot;
            b.costAware = costAware;
            b.budgets.addAll(budgets);
            b.clock = clock;
            b.ledger = ledger;
            b.shared = shared;
            b.sharedPrefix = sharedPrefix;
            return b;
        }

        /** The policy; fails when a rule, budget or default names an undefined tier. */
        public StandardRoutingPolicy build() {
            return new StandardRoutingPolicy(this);
        }
    }
}
