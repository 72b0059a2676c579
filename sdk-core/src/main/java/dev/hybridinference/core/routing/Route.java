package dev.hybridinference.core.routing;

import java.util.List;
import java.util.Objects;

/**
 * The members a request may go to, in the order to try them, and why.
 *
 * @param candidates member names, first choice first
 * @param reason the routing decision in words ({@code "tier small by rule prompt <= 2000 tokens; ..."})
 * @param tier the tier chosen, or null when the policy has no tiers
 * @param spilledOver whether the policy moved a full spillover primary behind its overflow members
 */
public record Route(List<String> candidates, String reason, String tier, boolean spilledOver) {
    /** A route that did not spill over. */
    public Route(List<String> candidates, String reason, String tier) {
        this(candidates, reason, tier, false);
    }

    /** Copies the list. */
    public Route {
        candidates = List.copyOf(candidates);
        Objects.requireNonNull(reason, "reason");
    }
}
