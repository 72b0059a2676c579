package dev.hybridinference.core;

import dev.hybridinference.core.spi.Secrets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The routing decision of a composite call as facts a program can read, next to the prose {@link
 * Receipt#route()}: the tier chosen, whether the call spilled over from a full primary, whether it fell
 * back after a failure, and which members were skipped and why. A call to a single provider has {@link
 * #NONE}. Immutable; built with {@link #builder()}.
 *
 * @param tier the tier the policy chose; empty when the policy has no tiers
 * @param spilledOver the spillover primary had no room, so the call went to an overflow member
 * @param fellBack an earlier member failed and a later one answered (or was tried last)
 * @param skipped the members passed over without a call, in order, with the reason for each
 */
public record RouteFacts(Optional<String> tier, boolean spilledOver, boolean fellBack, List<Skip> skipped) {
    /** No routing: a call to a single provider. */
    public static final RouteFacts NONE = new RouteFacts(Optional.empty(), false, false, List.of());

    /**
     * A member routing passed over.
     *
     * @param member the member's name
     * @param reason why ("circuit open after repeated failures", "no free slot: 64/64 in flight")
     */
    public record Skip(String member, String reason) {
        /** Checks the member and redacts the reason. */
        public Skip {
            Objects.requireNonNull(member, "member");
            reason = reason == null ? "" : Secrets.redact(reason);
        }
    }

    /** Copies the list; an absent tier is empty. */
    public RouteFacts {
        tier = tier == null ? Optional.empty() : tier;
        skipped = List.copyOf(skipped);
    }

    /** A builder with nothing set. */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding these facts. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.tier = tier.orElse(null);
        b.spilledOver = spilledOver;
        b.fellBack = fellBack;
        b.skipped.addAll(skipped);
        return b;
    }

    /** Builds {@link RouteFacts}. Not thread-safe. */
    public static final class Builder {
        private String tier;
        private boolean spilledOver;
        private boolean fellBack;
        private final List<Skip> skipped = new ArrayList<>();

        private Builder() {}

        /** The tier chosen; null for none. */
        public Builder tier(String tier) {
            this.tier = tier;
            return this;
        }

        /** Whether the call spilled over from the primary. */
        public Builder spilledOver(boolean spilledOver) {
            this.spilledOver = spilledOver;
            return this;
        }

        /** Whether the call fell back after a member failed. */
        public Builder fellBack(boolean fellBack) {
            this.fellBack = fellBack;
            return this;
        }

        /** Adds a member passed over. */
        public Builder skipped(String member, String reason) {
            skipped.add(new Skip(member, reason));
            return this;
        }

        /** The facts. */
        public RouteFacts build() {
            return new RouteFacts(Optional.ofNullable(tier), spilledOver, fellBack, skipped);
        }
    }
}
